/*  nf_innertube: see nf_innertube.h. */
#define _GNU_SOURCE /* strcasestr, memmem */
#include "nf_innertube.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_STEPS 8

struct nf_clients_t {
    json_t *doc;                  /* the whole file */
    const char *steps[MAX_STEPS]; /* borrowed from doc */
    size_t nsteps;
};

/* ---- client profiles ---------------------------------------------------------- */

/* Check one profile; 0, or -1 with ERR. */
static int
s_check_profile (const char *name, const json_t *p, char *err, size_t errlen)
{
    const json_t *ctx = json_object_get (p, "context");
    if (!json_is_object (p) || !json_is_object (ctx)) {
        snprintf (err, errlen, "clients.%s: needs a \"context\" object", name);
        return -1;
    }
    const char *cn = json_string_value (json_object_get (ctx, "clientName"));
    const char *cv = json_string_value (json_object_get (ctx, "clientVersion"));
    if (!cn || !*cn || !cv || !*cv) {
        snprintf (err, errlen, "clients.%s.context: clientName and clientVersion must be strings",
                  name);
        return -1;
    }
    const char *k;
    const json_t *v;
    json_object_foreach ((json_t *) ctx, k, v)
    {
        if (!json_is_string (v) && !json_is_integer (v)) {
            snprintf (err, errlen, "clients.%s.context.%s: must be a string or a whole number",
                      name, k);
            return -1;
        }
    }
    const json_t *ua = json_object_get (p, "user_agent"), *id = json_object_get (p, "client_id");
    const json_t *hs = json_object_get (p, "headers");
    if (!json_is_string (ua) || (id && !json_is_integer (id)) || (hs && !json_is_object (hs))) {
        snprintf (err, errlen,
                  "clients.%s: user_agent must be a string, client_id a whole number, headers an "
                  "object",
                  name);
        return -1;
    }
    json_object_foreach ((json_t *) hs, k, v)
    {
        const char *hv = json_string_value (v);
        if (!hv || strpbrk (k, ":\r\n") || strpbrk (hv, "\r\n")) {
            snprintf (err, errlen, "clients.%s.headers.%s: must be a one-line string", name, k);
            return -1;
        }
    }
    return 0;
}

nf_clients_t *
nf_clients_new (const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb (text, len, 0, &je);
    if (!doc) {
        snprintf (err, errlen, "not JSON: %s (line %d)", je.text, je.line);
        return NULL;
    }
    const json_t *chain = json_object_get (doc, "chain"),
                 *clients = json_object_get (doc, "clients");
    if (!json_is_array (chain) || json_array_size (chain) == 0
        || json_array_size (chain) > MAX_STEPS || !json_is_object (clients)) {
        snprintf (err, errlen, "needs \"chain\" (1 to %d names) and a \"clients\" object",
                  MAX_STEPS);
        json_decref (doc);
        return NULL;
    }
    nf_clients_t *self = calloc (1, sizeof *self);
    self->doc = doc;
    const char *k;
    const json_t *v;
    json_object_foreach ((json_t *) clients, k, v)
    {
        if (s_check_profile (k, v, err, errlen) != 0) {
            nf_clients_destroy (&self);
            return NULL;
        }
    }
    size_t i;
    json_array_foreach (chain, i, v)
    {
        const char *step = json_string_value (v);
        bool known = step && (strcmp (step, "watch") == 0 || json_object_get (clients, step));
        for (size_t j = 0; known && j < self->nsteps; j++)
            known = strcmp (self->steps[j], step) != 0;
        if (!known) {
            snprintf (err, errlen,
                      "chain[%zu]: '%.40s' is not a client of \"clients\", nor "
                      "\"watch\", or is named twice",
                      i, step ? step : "?");
            nf_clients_destroy (&self);
            return NULL;
        }
        self->steps[self->nsteps++] = step;
    }
    return self;
}

void
nf_clients_destroy (nf_clients_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    json_decref ((*self_p)->doc);
    free (*self_p);
    *self_p = NULL;
}

size_t
nf_clients_steps (const nf_clients_t *self)
{
    return self->nsteps;
}

const char *
nf_clients_step (const nf_clients_t *self, size_t i)
{
    return i < self->nsteps ? self->steps[i] : NULL;
}

const json_t *
nf_clients_get (const nf_clients_t *self, const char *name)
{
    return json_object_get (json_object_get (self->doc, "clients"), name);
}

char *
nf_clients_body (const json_t *profile, const char *video_id, const char *hl)
{
    json_t *client = json_deep_copy (json_object_get (profile, "context"));
    json_object_set_new (client, "hl", json_string (hl && *hl ? hl : "en"));
    json_t *body = json_pack ("{s:{s:o}, s:s, s:b, s:b}", "context", "client", client, "videoId",
                              video_id, "contentCheckOk", 1, "racyCheckOk", 1);
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    return text;
}

void
nf_clients_headers (const json_t *profile, nf_buf_t *buf, const char **headers, size_t cap)
{
    /* Offsets first: BUF may move while it grows. */
    size_t offs[16], n = 0;
    const json_t *id = json_object_get (profile, "client_id");
    const char *ver =
        json_string_value (json_object_get (json_object_get (profile, "context"), "clientVersion"));
    if (json_is_integer (id)) {
        offs[n++] = buf->len;
        nf_buf_printf (buf, "X-YouTube-Client-Name: %lld", (long long) json_integer_value (id));
        nf_buf_append (buf, "", 1);
        offs[n++] = buf->len;
        nf_buf_printf (buf, "X-YouTube-Client-Version: %s", ver ? ver : "");
        nf_buf_append (buf, "", 1);
    }
    const char *k;
    const json_t *v;
    json_object_foreach ((json_t *) json_object_get (profile, "headers"), k, v)
    {
        if (n + 1 >= cap || n >= sizeof offs / sizeof offs[0])
            break;
        offs[n++] = buf->len;
        nf_buf_printf (buf, "%s: %s", k, json_string_value (v));
        nf_buf_append (buf, "", 1);
    }
    for (size_t i = 0; i < n && i + 1 < cap; i++)
        headers[i] = buf->data + offs[i];
    headers[n < cap ? n : cap - 1] = NULL;
}

/* ---- playability ---------------------------------------------------------------- */

const char *
nf_play_name (nf_play_t p)
{
    static const char *const names[] = {
        "ok", "blocked", "age_restricted", "unavailable", "unplayable", "other_video", "malformed"};
    return (size_t) p < sizeof names / sizeof names[0] ? names[p] : "?";
}

/* The first text of YouTube's reason: reason, then the error screen's. */
static const char *
s_reason (const json_t *ps)
{
    const char *r = json_string_value (json_object_get (ps, "reason"));
    if (r && *r)
        return r;
    const json_t *pem =
        json_object_get (json_object_get (ps, "errorScreen"), "playerErrorMessageRenderer");
    r = json_string_value (json_object_get (json_object_get (pem, "reason"), "simpleText"));
    return r ? r : "";
}

/* Whether any of YouTube's words for the outcome (reason and subreason)
   contain NEEDLE, case-insensitively. */
static bool
s_says (const json_t *ps, const char *needle)
{
    if (strcasestr (s_reason (ps), needle))
        return true;
    const json_t *pem =
        json_object_get (json_object_get (ps, "errorScreen"), "playerErrorMessageRenderer");
    const json_t *runs = json_object_get (json_object_get (pem, "subreason"), "runs");
    size_t i;
    const json_t *run;
    json_array_foreach (runs, i, run)
    {
        const char *t = json_string_value (json_object_get (run, "text"));
        if (t && strcasestr (t, needle))
            return true;
    }
    const char *st =
        json_string_value (json_object_get (json_object_get (pem, "subreason"), "simpleText"));
    return st && strcasestr (st, needle);
}

nf_play_t
nf_play_classify (const json_t *player, const char *video_id, const char **reason)
{
    *reason = "";
    const json_t *ps = json_object_get (player, "playabilityStatus");
    const char *status = json_string_value (json_object_get (ps, "status"));
    if (!status)
        return NF_PLAY_MALFORMED;
    *reason = s_reason (ps);
    const char *vid =
        json_string_value (json_object_get (json_object_get (player, "videoDetails"), "videoId"));
    if (vid && video_id && strcmp (vid, video_id) != 0)
        return NF_PLAY_OTHER_VIDEO;
    if (strcmp (status, "OK") == 0)
        return NF_PLAY_OK;
    if (s_says (ps, "not a bot") || s_says (ps, "unusual traffic"))
        return NF_PLAY_BLOCKED;
    if (strcmp (status, "AGE_CHECK_REQUIRED") == 0
        || strcmp (status, "AGE_VERIFICATION_REQUIRED") == 0 || s_says (ps, "confirm your age")
        || s_says (ps, "inappropriate for some users"))
        return NF_PLAY_AGE;
    if (strcmp (status, "ERROR") == 0
        || (strcmp (status, "LOGIN_REQUIRED") == 0 && s_says (ps, "private")))
        return NF_PLAY_UNAVAILABLE;
    return NF_PLAY_UNPLAYABLE;
}

bool
nf_yt_is_captcha (const char *body, size_t len)
{
    if (!body)
        return false;
    size_t n = len < 65536 ? len : 65536;
    return memmem (body, n, "g-recaptcha", 11) || memmem (body, n, "unusual traffic", 15)
           || memmem (body, n, "captcha-form", 12);
}

int
nf_yt_consent_cookie (const char *body, size_t len, char *cookie, size_t cap)
{
    static const char form[] = "action=\"https://consent.youtube.com/s\"";
    static const char v[] = "name=\"v\" value=\"";
    const char *f = body ? memmem (body, len, form, sizeof form - 1) : NULL;
    if (!f)
        return 0;
    size_t rest = len - (size_t) (f - body);
    const char *at = memmem (f, rest, v, sizeof v - 1);
    if (!at)
        return -1;
    at += sizeof v - 1;
    size_t vl = 0;
    while (at + vl < body + len && at[vl] != '"' && vl < 200)
        vl++;
    for (size_t i = 0; i < vl; i++)
        if (!isgraph ((unsigned char) at[i]) || at[i] == ';')
            return -1;
    snprintf (cookie, cap, "CONSENT=YES+%.*s", (int) vl, at);
    return 1;
}

/* ---- tracks --------------------------------------------------------------------- */

bool
nf_track_gated (const char *url)
{
    const char *q = url ? strchr (url, '?') : NULL;
    for (const char *p = q; p && *p; p = strchr (p + 1, '&')) {
        if (strncmp (p + 1, "exp=", 4) == 0) {
            size_t n = strcspn (p + 5, "&#");
            for (size_t i = 0; i + 3 <= n; i++)
                if (strncmp (p + 5 + i, "xpe", 3) == 0 || strncmp (p + 5 + i, "xpv", 3) == 0)
                    return true;
        }
    }
    return false;
}

json_t *
nf_tracks_usable (const json_t *tracks, size_t *gated)
{
    json_t *out = json_array ();
    *gated = 0;
    size_t i;
    const json_t *t;
    json_array_foreach (tracks, i, t)
    {
        const char *url = json_string_value (json_object_get (t, "baseUrl"));
        if (!url || !json_is_string (json_object_get (t, "languageCode")))
            continue;
        if (nf_track_gated (url))
            (*gated)++;
        else
            json_array_append (out, (json_t *) t);
    }
    return out;
}

/* Whether track language CODE matches TAG (LEN bytes): exactly
   (PRIMARY false), or on the primary subtag. */
static bool
s_lang_match (const char *code, const char *tag, size_t len, bool primary)
{
    if (!primary)
        return strlen (code) == len && strncasecmp (code, tag, len) == 0;
    size_t a = strcspn (code, "-_"), b = 0;
    while (b < len && tag[b] != '-' && tag[b] != '_')
        b++;
    return a == b && strncasecmp (code, tag, a) == 0;
}

static bool
s_is_asr (const json_t *t)
{
    const char *kind = json_string_value (json_object_get (t, "kind"));
    return kind && strcmp (kind, "asr") == 0;
}

bool
nf_tracks_pick (const json_t *usable, const char *langs, bool translate, nf_track_pick_t *out)
{
    memset (out, 0, sizeof *out);
    /* Passes: manual exact, manual primary, asr exact, asr primary. */
    for (int pass = 0; pass < 4; pass++) {
        bool asr = pass >= 2, primary = pass % 2 == 1;
        for (const char *tag = langs; tag && *tag;) {
            size_t len = strcspn (tag, ",");
            size_t i;
            const json_t *t;
            json_array_foreach (usable, i, t)
            {
                const char *code = json_string_value (json_object_get (t, "languageCode"));
                if (s_is_asr (t) == asr && code && s_lang_match (code, tag, len, primary)) {
                    out->track = t;
                    return true;
                }
            }
            tag += len;
            tag += *tag == ',';
        }
    }
    if (!translate || !langs || !*langs)
        return false;
    size_t len = strcspn (langs, ",");
    for (int asr = 0; asr < 2; asr++) {
        size_t i;
        const json_t *t;
        json_array_foreach (usable, i, t)
        {
            if (s_is_asr (t) == (asr == 1)
                && json_is_true (json_object_get (t, "isTranslatable"))) {
                out->track = t;
                snprintf (out->tlang, sizeof out->tlang, "%.*s", (int) (len < 15 ? len : 15),
                          langs);
                return true;
            }
        }
    }
    return false;
}
