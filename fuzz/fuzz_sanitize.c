/*  fuzz_sanitize: the transcript sanitizer and the entity decoder on any
    bytes. The cleaned text is valid UTF-8, the score and its components
    stay in range, and the counts agree with each other. */
#include "nf_fuzz.h"
#include "nf_sanitize.h"

#include <math.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    nf_sanitized_t s;
    size_t cap = size > 4 ? (size_t) data[0] * 64 + 64 : 1 << 20;
    NF_FUZZ_CHECK (nf_sanitize (text, size, cap, &s) == 0);
    NF_FUZZ_CHECK (s.text != NULL && nf_utf8_valid (s.text, strlen (s.text)));
    NF_FUZZ_CHECK (isfinite (s.quality) && s.quality >= 0 && s.quality <= 100);
    NF_FUZZ_CHECK (s.length >= 0 && s.length <= 1 && s.diversity >= 0 && s.diversity <= 1);
    NF_FUZZ_CHECK (s.real >= 0 && s.real <= 1 && s.clean >= 0 && s.clean <= 1);
    NF_FUZZ_CHECK (s.unique_words <= s.words && s.real_words <= s.words);
    NF_FUZZ_CHECK (s.input_bytes <= size && s.input_bytes <= cap);
    NF_FUZZ_CHECK (s.truncated == (size > cap));
    nf_sanitized_free (&s);

    nf_buf_t out;
    nf_buf_init (&out);
    nf_html_unescape (text, size, &out);
    NF_FUZZ_CHECK (out.len <= size * 4 + 4);
    if (nf_utf8_valid (text, size))
        NF_FUZZ_CHECK (out.len == 0 || nf_utf8_valid (out.data, out.len));
    nf_buf_free (&out);
    return 0;
}
