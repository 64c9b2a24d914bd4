/*  nf_llm: an OpenAI-compatible chat-completions client (libcurl, jansson)
    that writes nf_ai_t content for one outlier.

    Request: POST {url}/chat/completions with `model`, a system and a user
    message rendered from the prompt templates, `response_format`
    {"type": "json_object"}, and `Authorization: Bearer <key>` when a key is
    set (the key is never logged or put in an error). The answer's message
    content must be a JSON object with the nf_ai_t fields; each is checked
    (titles: 5 non-empty strings; hook: non-empty, at most 2 sentences;
    outline: 5 non-empty strings; thumbnail, why: non-empty; every text at
    most NF_AI_FIELD_MAX bytes; more than 5 entries keep the first 5).

    One call makes up to 1 + retries requests:
      429, 5xx, timeout,
      connection error  wait Retry-After (seconds or an HTTP date, at most
                        30 s; else 1 s, 2 s, 4 s...), try again; in the end
                        NF_LLM_RETRYABLE (the broker's attempts take over)
      invalid answer    try again at once; in the end NF_LLM_INVALID (the
                        video is FAILED with the reason)
      other 4xx         NF_LLM_PERMANENT at once (bad key, model or URL)
    Template placeholders: {{niche}} {{sub_niche}} {{title}} {{channel}}
    {{views}} {{subscribers}} {{multiplier}} {{views_per_sub}} {{velocity}}
    {{age_days}} {{engagement}} {{composite}} {{rank}} {{quality}}
    {{transcript}}; an unknown one is an error when the templates load. */
#ifndef NF_LLM_H
#define NF_LLM_H

#include "nf_ai.h"
#include "nf_util.h"

typedef enum { NF_LLM_OK, NF_LLM_RETRYABLE, NF_LLM_INVALID, NF_LLM_PERMANENT } nf_llm_status_t;

typedef struct {
    const char *url;         /* base URL, ".../v1" */
    const char *model;       /* model name */
    const char *api_key;     /* bearer token or "" */
    long timeout_ms;         /* per request */
    int retries;             /* extra requests after a failure */
    size_t transcript_bytes; /* transcript budget in the prompt */
    const char *prompt_dir;  /* folder with system.txt and user.txt, or "" */
    long max_wait_ms;        /* cap on a Retry-After wait (30000 by default) */
} nf_llm_opts_t;

typedef struct nf_llm_t nf_llm_t;

/* A client; NULL with ERR when a template is missing or names an unknown
   placeholder. OPTS strings are borrowed and must outlive the client. */
nf_llm_t *nf_llm_new (const nf_llm_opts_t *opts, char *err, size_t errlen);
void nf_llm_destroy (nf_llm_t **self_p);

/* Write OUT for IN. TOKENS receives the total tokens the answers reported
   (summed over every request of this call). ERR says why when not OK. */
nf_llm_status_t nf_llm_write (nf_llm_t *self, const nf_ai_input_t *in, nf_ai_t *out,
                              int64_t *tokens, char *err, size_t errlen);

/* Render template TPL for IN (the transcript cut to TRANSCRIPT_BYTES at a
   word boundary). 0, or -1 with ERR naming an unknown placeholder. */
int nf_llm_render (const char *tpl, const nf_ai_input_t *in, size_t transcript_bytes, nf_buf_t *out,
                   char *err, size_t errlen);

/* Parse a chat-completions response BODY into OUT and its token usage.
   0, or -1 with ERR listing every field that is wrong. */
int nf_llm_parse (const char *body, size_t len, nf_ai_t *out, int64_t *tokens, char *err,
                  size_t errlen);

#endif
