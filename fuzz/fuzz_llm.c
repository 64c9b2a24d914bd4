/*  fuzz_llm: the chat-completions response validator. Any body is accepted
    with every field filled, or refused with a message. */
#include "nf_ai.h"
#include "nf_fuzz.h"
#include "nf_llm.h"

#include <string.h>

static void
s_field (const char *s)
{
    NF_FUZZ_CHECK (s != NULL && *s != '\0');
    NF_FUZZ_CHECK (strlen (s) <= NF_AI_FIELD_MAX * 4);
    NF_FUZZ_CHECK (nf_utf8_valid (s, strlen (s)));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    nf_ai_t ai;
    memset (&ai, 0, sizeof ai);
    int64_t tokens = 0;
    char err[512] = "";
    if (nf_llm_parse ((const char *) data, size, &ai, &tokens, err, sizeof err) == 0) {
        for (int i = 0; i < NF_AI_TITLES; i++)
            s_field (ai.titles[i]);
        for (int i = 0; i < NF_AI_POINTS; i++)
            s_field (ai.outline[i]);
        s_field (ai.hook);
        s_field (ai.thumbnail);
        s_field (ai.why);
        NF_FUZZ_CHECK (tokens >= 0);
    }
    else
        NF_FUZZ_CHECK (err[0] != '\0');
    nf_ai_free (&ai);
    return 0;
}
