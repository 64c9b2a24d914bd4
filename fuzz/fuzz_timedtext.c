/*  fuzz_timedtext: timed text in srv1, srv3 and json3. Any input gives
    segments or an error; the transcript is valid UTF-8 lines. */
#include "nf_fuzz.h"
#include "nf_youtube.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err[256] = "";
    nf_buf_t out;
    nf_buf_init (&out);
    int n = nf_timedtext_parse ((const char *) data, size, &out, err, sizeof err);
    if (n < 0)
        NF_FUZZ_CHECK (err[0] != '\0');
    else
        NF_FUZZ_CHECK (out.len == 0 || nf_utf8_valid (out.data, out.len));
    nf_buf_free (&out);
    return 0;
}
