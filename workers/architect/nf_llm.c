/*  nf_llm: see nf_llm.h. */
#define _GNU_SOURCE
#include "nf_llm.h"
#include "nf_http.h"
#include "nf_log.h"

#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RESPONSE (4 << 20) /* bytes of a response body kept */
#define MAX_TEMPLATE (1 << 20) /* bytes of a prompt template read */

extern const char *const nf_prompts[]; /* prompts/system.txt, prompts/user.txt */
extern const int nf_prompts_count;

struct nf_llm_t {
    nf_llm_opts_t opts; /* borrowed strings */
    char *system;       /* system prompt template (owned) */
    char *user;         /* user prompt template (owned) */
    char *endpoint;     /* {url}/chat/completions (owned) */
    CURL *curl;         /* reused handle (keeps the connection) */
};

/* ---- templates ------------------------------------------------------------ */

static void
s_num (nf_buf_t *out, bool has, int decimals, double value, const char *suffix)
{
    if (has)
        nf_buf_printf (out, "%.*f%s", decimals, value, suffix);
    else
        nf_buf_puts (out, "unknown");
}

/* Append the value of placeholder NAME (LEN bytes); -1 when unknown. */
static int
s_value (const char *name, size_t len, const nf_ai_input_t *in, size_t budget, nf_buf_t *out)
{
#define IS(s) (len == strlen (s) && memcmp (name, s, len) == 0)
    if (IS ("niche"))
        nf_buf_puts (out, in->niche ? in->niche : "");
    else if (IS ("sub_niche"))
        nf_buf_puts (out, in->sub_niche && *in->sub_niche ? in->sub_niche : "");
    else if (IS ("title"))
        nf_buf_puts (out, in->title ? in->title : "");
    else if (IS ("channel"))
        nf_buf_puts (out, in->channel && *in->channel ? in->channel : "unknown");
    else if (IS ("views"))
        nf_buf_printf (out, "%.0f", in->views);
    else if (IS ("subscribers"))
        s_num (out, in->has_subscribers, 0, in->subscribers, "");
    else if (IS ("multiplier"))
        s_num (out, in->has_multiplier, 2, in->multiplier, "x");
    else if (IS ("views_per_sub"))
        s_num (out, in->has_views_per_sub, 2, in->views_per_sub, "");
    else if (IS ("velocity"))
        s_num (out, in->has_velocity, 0, in->velocity, "");
    else if (IS ("age_days"))
        s_num (out, in->has_age, 0, in->age_days, "");
    else if (IS ("engagement"))
        s_num (out, in->has_engagement, 2, in->engagement * 100.0, "%");
    else if (IS ("composite"))
        nf_buf_printf (out, "%.1f", in->composite);
    else if (IS ("rank"))
        nf_buf_printf (out, "%d", in->rank);
    else if (IS ("quality"))
        nf_buf_printf (out, "%.0f", in->quality);
    else if (IS ("transcript")) {
        const char *t = in->transcript ? in->transcript : "";
        size_t n = strlen (t);
        if (n <= budget)
            nf_buf_puts (out, t);
        else {
            size_t cut = budget;
            while (cut > 0 && t[cut] != ' ')
                cut--;
            if (cut == 0) { /* one giant word: cut at a character boundary */
                cut = budget;
                while (cut > 0 && ((unsigned char) t[cut] & 0xC0) == 0x80)
                    cut--;
            }
            nf_buf_append (out, t, cut);
            nf_buf_puts (out, " [...]");
        }
    }
    else
        return -1;
    return 0;
#undef IS
}

int
nf_llm_render (const char *tpl, const nf_ai_input_t *in, size_t transcript_bytes, nf_buf_t *out,
               char *err, size_t errlen)
{
    for (const char *p = tpl; *p;) {
        const char *open = strstr (p, "{{");
        if (!open) {
            nf_buf_puts (out, p);
            break;
        }
        nf_buf_append (out, p, (size_t) (open - p));
        const char *close = strstr (open + 2, "}}");
        if (!close) {
            snprintf (err, errlen, "unclosed placeholder '%.20s'", open);
            return -1;
        }
        const char *name = open + 2;
        size_t len = (size_t) (close - name);
        while (len && *name == ' ')
            name++, len--;
        while (len && name[len - 1] == ' ')
            len--;
        if (s_value (name, len, in, transcript_bytes, out) != 0) {
            snprintf (err, errlen, "unknown placeholder '{{%.*s}}'", (int) (len > 40 ? 40 : len),
                      name);
            return -1;
        }
        p = close + 2;
    }
    return 0;
}

static char *
s_load (const char *dir, const char *name, const char *builtin, char *err, size_t errlen)
{
    if (!dir || !*dir)
        return strdup (builtin);
    char path[4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    nf_buf_t b;
    nf_buf_init (&b);
    if (nf_buf_read_file (&b, path, MAX_TEMPLATE) != 0) {
        snprintf (err, errlen, "cannot read prompt template %s", path);
        nf_buf_free (&b);
        return NULL;
    }
    if (!b.data || !nf_utf8_valid (b.data, b.len)) {
        snprintf (err, errlen, "prompt template %s is empty or not UTF-8", path);
        nf_buf_free (&b);
        return NULL;
    }
    return b.data;
}

nf_llm_t *
nf_llm_new (const nf_llm_opts_t *opts, char *err, size_t errlen)
{
    nf_llm_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    if (self->opts.max_wait_ms <= 0)
        self->opts.max_wait_ms = 30000;
    self->system = s_load (opts->prompt_dir, "system.txt", nf_prompts[0], err, errlen);
    self->user =
        self->system ? s_load (opts->prompt_dir, "user.txt", nf_prompts[1], err, errlen) : NULL;
    nf_ai_input_t probe;
    memset (&probe, 0, sizeof probe);
    nf_buf_t b;
    nf_buf_init (&b);
    bool ok = self->system && self->user
              && nf_llm_render (self->system, &probe, 0, &b, err, errlen) == 0
              && nf_llm_render (self->user, &probe, 0, &b, err, errlen) == 0;
    nf_buf_free (&b);
    size_t ulen = strlen (opts->url ? opts->url : "");
    while (ulen > 0 && opts->url[ulen - 1] == '/')
        ulen--;
    if (ok
        && (asprintf (&self->endpoint, "%.*s/chat/completions", (int) ulen, opts->url) < 0
            || !(self->curl = curl_easy_init ()))) {
        snprintf (err, errlen, "cannot start libcurl");
        ok = false;
    }
    if (!ok)
        nf_llm_destroy (&self);
    return self;
}

void
nf_llm_destroy (nf_llm_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_llm_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    free (self->system);
    free (self->user);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

/* ---- answers -------------------------------------------------------------- */

static char *
s_field (json_t *obj, const char *key, nf_buf_t *problems)
{
    json_t *v = json_object_get (obj, key);
    const char *s = json_string_value (v);
    size_t len = s ? json_string_length (v) : 0;
    while (len && (*s == ' ' || *s == '\n'))
        s++, len--;
    if (!s || len == 0) {
        nf_buf_printf (problems, "%s'%s' must be a non-empty string", problems->len ? "; " : "",
                       key);
        return NULL;
    }
    if (len > NF_AI_FIELD_MAX) {
        nf_buf_printf (problems, "%s'%s' is longer than %d bytes", problems->len ? "; " : "", key,
                       NF_AI_FIELD_MAX);
        return NULL;
    }
    return strndup (s, len);
}

static bool
s_list (json_t *obj, const char *key, char **out, int n, nf_buf_t *problems)
{
    json_t *arr = json_object_get (obj, key);
    bool ok = json_is_array (arr) && json_array_size (arr) >= (size_t) n;
    for (int i = 0; ok && i < n; i++) {
        json_t *v = json_array_get (arr, (size_t) i);
        const char *s = json_string_value (v);
        ok = s && *s && json_string_length (v) <= NF_AI_FIELD_MAX;
        if (ok)
            out[i] = strdup (s);
    }
    if (!ok) {
        for (int i = 0; i < n; i++) {
            free (out[i]);
            out[i] = NULL;
        }
        nf_buf_printf (problems, "%s'%s' must be an array of %d non-empty strings",
                       problems->len ? "; " : "", key, n);
    }
    return ok;
}

int
nf_llm_parse (const char *body, size_t len, nf_ai_t *out, int64_t *tokens, char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb (body, len, 0, &jerr);
    if (!root) {
        snprintf (err, errlen, "response is not JSON: %s", jerr.text);
        return -1;
    }
    json_t *usage = json_object_get (root, "usage");
    json_int_t total = json_integer_value (json_object_get (usage, "total_tokens"));
    if (!total)
        total = json_integer_value (json_object_get (usage, "prompt_tokens"))
                + json_integer_value (json_object_get (usage, "completion_tokens"));
    *tokens += total > 0 ? total : 0;
    json_t *content = json_object_get (
        json_object_get (json_array_get (json_object_get (root, "choices"), 0), "message"),
        "content");
    if (!json_is_string (content)) {
        snprintf (err, errlen, "response has no choices[0].message.content string");
        json_decref (root);
        return -1;
    }
    json_t *answer =
        json_loadb (json_string_value (content), json_string_length (content), 0, &jerr);
    json_decref (root);
    if (!json_is_object (answer)) {
        snprintf (err, errlen, "answer is not a JSON object: %s",
                  answer ? "another JSON value" : jerr.text);
        json_decref (answer);
        return -1;
    }
    nf_buf_t problems;
    nf_buf_init (&problems);
    s_list (answer, "titles", out->titles, NF_AI_TITLES, &problems);
    out->hook = s_field (answer, "hook", &problems);
    if (out->hook && nf_ai_sentences (out->hook) > 2)
        nf_buf_printf (&problems, "%s'hook' has %d sentences (at most 2)", problems.len ? "; " : "",
                       nf_ai_sentences (out->hook));
    s_list (answer, "outline", out->outline, NF_AI_POINTS, &problems);
    out->thumbnail = s_field (answer, "thumbnail", &problems);
    out->why = s_field (answer, "why", &problems);
    json_decref (answer);
    int rc = 0;
    if (problems.len) {
        snprintf (err, errlen, "invalid answer: %s", problems.data);
        nf_ai_free (out);
        rc = -1;
    }
    nf_buf_free (&problems);
    return rc;
}

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct {
    nf_buf_t body;        /* response body, capped */
    bool too_big;         /* more than MAX_RESPONSE */
    char retry_after[64]; /* Retry-After header value */
} s_response_t;

static size_t
s_on_body (char *data, size_t size, size_t n, void *arg)
{
    s_response_t *r = arg;
    size_t len = size * n;
    if (r->body.len + len > MAX_RESPONSE) {
        r->too_big = true;
        return 0; /* abort the transfer */
    }
    nf_buf_append (&r->body, data, len);
    return len;
}

static size_t
s_on_header (char *data, size_t size, size_t n, void *arg)
{
    s_response_t *r = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp (data, "retry-after:", 12) == 0) {
        size_t v = len - 12 < sizeof r->retry_after - 1 ? len - 12 : sizeof r->retry_after - 1;
        memcpy (r->retry_after, data + 12, v);
        r->retry_after[v] = 0;
    }
    return len;
}

/* One request. Returns the HTTP status, or 0 with ERR on a transport error. */
static long
s_post (nf_llm_t *self, const char *payload, s_response_t *r, char *err, size_t errlen)
{
    CURL *c = self->curl;
    curl_easy_reset (c);
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    if (self->opts.api_key && *self->opts.api_key) {
        char *auth = NULL;
        if (asprintf (&auth, "Authorization: Bearer %s", self->opts.api_key) >= 0) {
            headers = curl_slist_append (headers, auth);
            free (auth);
        }
    }
    curl_easy_setopt (c, CURLOPT_URL, self->endpoint);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (c, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, self->opts.timeout_ms);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS, self->opts.timeout_ms);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt (c, CURLOPT_USERAGENT, "nicheflow-architect");
    CURLcode rc = curl_easy_perform (c);
    curl_slist_free_all (headers);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &status);
    else if (r->too_big)
        snprintf (err, errlen, "response larger than %d bytes", MAX_RESPONSE);
    else
        snprintf (err, errlen, "%s", curl_easy_strerror (rc));
    return status;
}

static char *
s_payload (nf_llm_t *self, const nf_ai_input_t *in, char *err, size_t errlen)
{
    nf_buf_t sys, user;
    nf_buf_init (&sys);
    nf_buf_init (&user);
    char *text = NULL;
    if (nf_llm_render (self->system, in, self->opts.transcript_bytes, &sys, err, errlen) == 0
        && nf_llm_render (self->user, in, self->opts.transcript_bytes, &user, err, errlen) == 0) {
        nf_buf_t s2, u2; /* strings from the database are repaired; be sure anyway */
        nf_buf_init (&s2);
        nf_buf_init (&u2);
        nf_buf_utf8_repair (&s2, sys.data ? sys.data : "", sys.len);
        nf_buf_utf8_repair (&u2, user.data ? user.data : "", user.len);
        json_t *req =
            json_pack ("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:{s:s}, s:f}", "model", self->opts.model,
                       "messages", "role", "system", "content", s2.data ? s2.data : "", "role",
                       "user", "content", u2.data ? u2.data : "", "response_format", "type",
                       "json_object", "temperature", 0.7);
        text = req ? json_dumps (req, JSON_COMPACT) : NULL;
        json_decref (req);
        nf_buf_free (&s2);
        nf_buf_free (&u2);
        if (!text)
            snprintf (err, errlen, "cannot encode the request");
    }
    nf_buf_free (&sys);
    nf_buf_free (&user);
    return text;
}

nf_llm_status_t
nf_llm_write (nf_llm_t *self, const nf_ai_input_t *in, nf_ai_t *out, int64_t *tokens, char *err,
              size_t errlen)
{
    memset (out, 0, sizeof *out);
    char *payload = s_payload (self, in, err, errlen);
    if (!payload)
        return NF_LLM_PERMANENT;
    nf_llm_status_t status = NF_LLM_RETRYABLE;
    long backoff_ms = 1000;
    for (int attempt = 0; attempt <= self->opts.retries; attempt++) {
        s_response_t r;
        memset (&r, 0, sizeof r);
        nf_buf_init (&r.body);
        char why[512] = "";
        long code = s_post (self, payload, &r, why, sizeof why);
        long wait_ms = -1;
        if (code == 200) {
            if (nf_llm_parse (r.body.data ? r.body.data : "", r.body.len, out, tokens, why,
                              sizeof why)
                == 0)
                status = NF_LLM_OK;
            else {
                status = NF_LLM_INVALID;
                wait_ms = 0;
            }
        }
        else if (code == 429 || code >= 500 || code == 0) {
            status = NF_LLM_RETRYABLE;
            if (code)
                snprintf (why, sizeof why, "HTTP %ld from the LLM", code);
            wait_ms = nf_http_retry_after_ms (r.retry_after[0] ? r.retry_after : NULL,
                                              (double) time (NULL));
            if (wait_ms < 0)
                wait_ms = backoff_ms;
            backoff_ms *= 2;
        }
        else {
            status = NF_LLM_PERMANENT;
            snprintf (why, sizeof why,
                      "HTTP %ld from the LLM (check NF_LLM_URL, NF_LLM_MODEL "
                      "and NF_LLM_API_KEY)",
                      code);
        }
        nf_buf_free (&r.body);
        snprintf (err, errlen, "%s (request %d of %d)", why, attempt + 1, self->opts.retries + 1);
        if (status == NF_LLM_OK || status == NF_LLM_PERMANENT)
            break;
        nf_warn ("LLM: %s", err);
        if (attempt < self->opts.retries && wait_ms > 0)
            zclock_sleep (
                (int) (wait_ms > self->opts.max_wait_ms ? self->opts.max_wait_ms : wait_ms));
    }
    free (payload);
    return status;
}
