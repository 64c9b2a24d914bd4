/*  nf-web: the web page of nicheflow. A creator submits a niche, watches
    it run (Server-Sent Events), cancels, retries or resumes it, reads its
    outliers and downloads its exports; an operator reads the services,
    the database's health and the error feed. nf-web is a client of the
    broker like nf-submit (the same client services, its own CURVE key)
    and a subscriber of its progress events (nf_web_hub); it never
    touches the database. The page (HTML, CSS, JS in tools/web/assets)
    is compiled into the binary and fetches nothing from elsewhere.

    HTTP (libmicrohttpd, a thread per connection: a request waits on the
    broker, a live page's stream waits on events, neither holds up the
    others; at most 128 connections, 32 from one address):

      GET  /                      the page (or the login page)
      GET  /app.js, /app.css      its script and style
      POST /login, /logout        with NF_WEB_TOKEN: a session cookie
      GET  /api/session           the CSRF token of this session
      GET  /api/options           the submission options (nf_jobopts), stages, statuses
      GET  /api/jobs[?status=S&limit=N]           nf.list
      POST /api/jobs              nf.submit; 422 with fields: {field: message}
      GET  /api/jobs/N            nf.status
      POST /api/jobs/N/cancel|retry|resume|purge  the service of that name
      GET  /api/jobs/N/outliers   the newest JSON export, thumbnails added
      GET  /api/jobs/N/export/xlsx|csv|json[?version=V]  a download
      GET  /api/events[?job=N]    Server-Sent Events: a "status" event with
                                  nf.status (nf.list without job) at once,
                                  after each change and every 10 s; "end"
                                  when the job is final
      GET  /api/ops               services, database, error feed

    Security: loopback by default; another bind needs NF_WEB_TOKEN (the page
    asks for it once, then a signed HttpOnly SameSite=Strict cookie holds
    the session for 12 hours). Without a token only a loopback Host header
    is answered (DNS rebinding). Every POST carries the session's CSRF
    token in X-CSRF-Token (the login form in a field) and, when the
    browser sends one, a same-origin Origin. Bodies are JSON of at most
    64 KiB. Responses carry a strict Content-Security-Policy (scripts,
    styles and connections to self; images also from NF_YOUTUBE_IMG_URL). */
#include "nf_config.h"
#include "nf_curve.h"
#include "nf_jobopts.h"
#include "nf_log.h"
#include "nf_states.h"
#include "nf_util.h"
#include "nf_version.h"
#include "nf_web_hub.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdatomic.h>
#include <unistd.h>

/* The page's files, compiled in (tools/CMakeLists.txt, this order). */
extern const char *const nf_web_assets[];
extern const int nf_web_assets_count;
enum { ASSET_INDEX, ASSET_LOGIN, ASSET_JS, ASSET_CSS, ASSET_COUNT };

#define BODY_MAX       65536 /* bytes of a request body */
#define SESSION_S      43200 /* a login lasts 12 hours */
#define STREAM_RESYNC  10000 /* ms between a stream's status events when nothing happens */
#define STREAM_SPACING 200   /* ms at least between two of its events */
#define TOKEN_MIN      16    /* characters of NF_WEB_TOKEN */

typedef struct {
    nf_web_hub_t *hub;                       /* the broker */
    const char *token;                       /* NF_WEB_TOKEN, "" for none */
    unsigned char key[crypto_auth_KEYBYTES]; /* signs sessions and CSRF tokens */
    const char *img_url;                     /* thumbnails: URL/vi/ID/mqdefault.jpg, "" none */
    char csp[768];                           /* the Content-Security-Policy */
    char host[64];                           /* bound address, for the Host check */
    int port;                                /* bound port */
    atomic_bool stopping;                    /* streams end */
} s_web_t;

typedef struct {
    nf_buf_t body; /* the request body so far */
    bool too_big;  /* it passed BODY_MAX */
} s_req_t;

/* ---- responses ------------------------------------------------------------- */

static void
s_headers (const s_web_t *w, struct MHD_Response *r, const char *type)
{
    MHD_add_response_header (r, "Content-Type", type);
    MHD_add_response_header (r, "Content-Security-Policy", w->csp);
    MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (r, "X-Frame-Options", "DENY");
    MHD_add_response_header (r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header (r, "Cache-Control", "no-store");
}

static enum MHD_Result
s_queue (struct MHD_Connection *conn, unsigned code, struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response (conn, code, r);
    MHD_destroy_response (r);
    return rc;
}

/* A response with a copy of LEN bytes of DATA. */
static struct MHD_Response *
s_response (const s_web_t *w, const char *type, const void *data, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer (len, (void *) data, MHD_RESPMEM_MUST_COPY);
    if (r)
        s_headers (w, r, type);
    return r;
}

/* Answer J (stolen) as JSON. */
static enum MHD_Result
s_json (const s_web_t *w, struct MHD_Connection *conn, unsigned code, json_t *j)
{
    char *text = j ? json_dumps (j, JSON_COMPACT) : NULL;
    json_decref (j);
    const char *body = text ? text : "{\"ok\":false,\"error\":\"out of memory\"}";
    enum MHD_Result rc =
        s_queue (conn, text ? code : 500, s_response (w, "application/json", body, strlen (body)));
    free (text);
    return rc;
}

static enum MHD_Result
s_error (const s_web_t *w, struct MHD_Connection *conn, unsigned code, const char *msg)
{
    return s_json (w, conn, code, json_pack ("{s:b, s:s}", "ok", 0, "error", msg));
}

static enum MHD_Result
s_redirect (const s_web_t *w, struct MHD_Connection *conn, const char *to, const char *cookie)
{
    struct MHD_Response *r = s_response (w, "text/plain", "", 0);
    if (r) {
        MHD_add_response_header (r, "Location", to);
        if (cookie)
            MHD_add_response_header (r, "Set-Cookie", cookie);
    }
    return s_queue (conn, MHD_HTTP_SEE_OTHER, r);
}

/* ASSET with each "{{NAME}}" of the pairs in VARS (NULL-ended) replaced. */
static enum MHD_Result
s_page (const s_web_t *w, struct MHD_Connection *conn, unsigned code, int asset,
        const char *const *vars)
{
    nf_buf_t b;
    nf_buf_init (&b);
    for (const char *p = nf_web_assets[asset]; *p;) {
        const char *open = strstr (p, "{{");
        if (!open) {
            nf_buf_puts (&b, p);
            break;
        }
        nf_buf_append (&b, p, (size_t) (open - p));
        const char *close = strstr (open, "}}");
        const char *value = NULL;
        for (size_t i = 0; vars && vars[i] && close && !value; i += 2)
            if (strlen (vars[i]) == (size_t) (close - open - 2)
                && strncmp (open + 2, vars[i], (size_t) (close - open - 2)) == 0)
                value = vars[i + 1];
        nf_buf_puts (&b, value ? value : "");
        p = close ? close + 2 : open + 2;
    }
    enum MHD_Result rc = s_queue (
        conn, code, s_response (w, "text/html; charset=utf-8", b.data ? b.data : "", b.len));
    nf_buf_free (&b);
    return rc;
}

/* Text for an HTML attribute or element: & < > " ' escaped. */
static void
s_html_escape (const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 7 < cap; in++) {
        const char *e = *in == '&'    ? "&amp;"
                        : *in == '<'  ? "&lt;"
                        : *in == '>'  ? "&gt;"
                        : *in == '"'  ? "&quot;"
                        : *in == '\'' ? "&#39;"
                                      : NULL;
        if (e)
            n += (size_t) snprintf (out + n, cap - n, "%s", e);
        else
            out[n++] = *in;
    }
    out[n] = 0;
}

/* ---- sessions and CSRF ----------------------------------------------------------- */

static void
s_mac (const s_web_t *w, const char *what, const char *arg, char hex[2 * crypto_auth_BYTES + 1])
{
    nf_buf_t m;
    nf_buf_init (&m);
    nf_buf_printf (&m, "%s|%s", what, arg);
    unsigned char mac[crypto_auth_BYTES];
    crypto_auth (mac, (const unsigned char *) m.data, m.len, w->key);
    sodium_bin2hex (hex, 2 * crypto_auth_BYTES + 1, mac, sizeof mac);
    nf_buf_free (&m);
}

static bool
s_equal (const char *a, const char *b)
{
    return a && b && strlen (a) == strlen (b) && sodium_memcmp (a, b, strlen (a)) == 0;
}

/* The session of the request into SESSION ("local" without a token);
   false when there is none or it is forged or old. */
static bool
s_session (const s_web_t *w, struct MHD_Connection *conn, char *session, size_t cap)
{
    if (!*w->token) {
        snprintf (session, cap, "local");
        return true;
    }
    const char *c = MHD_lookup_connection_value (conn, MHD_COOKIE_KIND, "nf_session");
    const char *dot = c ? strchr (c, '.') : NULL;
    if (!dot || dot - c > 20 || strlen (c) >= cap)
        return false;
    char exp[24], mac[2 * crypto_auth_BYTES + 1];
    memcpy (exp, c, (size_t) (dot - c));
    exp[dot - c] = 0;
    if (atoll (exp) < (long long) time (NULL))
        return false;
    s_mac (w, "session", exp, mac);
    if (!s_equal (mac, dot + 1))
        return false;
    snprintf (session, cap, "%s", c);
    return true;
}

/* One field of an application/x-www-form-urlencoded BODY into OUT, decoded. */
static bool
s_form_value (const char *body, const char *name, char *out, size_t cap)
{
    size_t nl = strlen (name);
    for (const char *p = body; p && *p; p = strchr (p, '&') ? strchr (p, '&') + 1 : NULL) {
        if (strncmp (p, name, nl) != 0 || p[nl] != '=')
            continue;
        size_t n = 0;
        for (const char *q = p + nl + 1; *q && *q != '&' && n + 1 < cap; q++) {
            unsigned hi, lo;
            if (*q == '+')
                out[n++] = ' ';
            else if (*q == '%' && sscanf (q + 1, "%1x%1x", &hi, &lo) == 2) {
                out[n++] = (char) (hi * 16 + lo);
                q += 2;
            }
            else
                out[n++] = *q;
        }
        out[n] = 0;
        return true;
    }
    return false;
}

static enum MHD_Result
s_login_page (const s_web_t *w, struct MHD_Connection *conn, unsigned code, const char *error)
{
    char csrf[2 * crypto_auth_BYTES + 1], esc[256];
    s_mac (w, "login", "", csrf);
    s_html_escape (error ? error : "", esc, sizeof esc);
    const char *vars[] = {"CSRF", csrf, "ERROR", esc, "VERSION", NF_VERSION, NULL};
    return s_page (w, conn, code, ASSET_LOGIN, vars);
}

/* POST /login: token and csrf fields; a session cookie. */
static enum MHD_Result
s_login (const s_web_t *w, struct MHD_Connection *conn, const s_req_t *req)
{
    if (!*w->token)
        return s_redirect (w, conn, "/", NULL);
    char token[512] = "", csrf[128] = "", want[2 * crypto_auth_BYTES + 1];
    const char *body = req->body.data ? req->body.data : "";
    s_form_value (body, "csrf", csrf, sizeof csrf);
    s_mac (w, "login", "", want);
    if (!s_equal (want, csrf))
        return s_login_page (w, conn, MHD_HTTP_FORBIDDEN,
                             "The form was stale: try again (CSRF token missing or wrong).");
    s_form_value (body, "token", token, sizeof token);
    /* Compare digests: the time taken says nothing of the token's length. */
    unsigned char a[32], b[32];
    crypto_generichash (a, sizeof a, (const unsigned char *) token, strlen (token), NULL, 0);
    crypto_generichash (b, sizeof b, (const unsigned char *) w->token, strlen (w->token), NULL, 0);
    sodium_memzero (token, sizeof token);
    if (sodium_memcmp (a, b, sizeof a) != 0) {
        nf_warn ("web: a login with a wrong token");
        sleep (1); /* a guesser's pace: one a second per connection */
        return s_login_page (w, conn, MHD_HTTP_UNAUTHORIZED, "That token is not right.");
    }
    char exp[24], mac[2 * crypto_auth_BYTES + 1], cookie[256];
    snprintf (exp, sizeof exp, "%lld", (long long) time (NULL) + SESSION_S);
    s_mac (w, "session", exp, mac);
    snprintf (cookie, sizeof cookie,
              "nf_session=%s.%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict", exp, mac,
              SESSION_S);
    nf_info ("web: a login");
    return s_redirect (w, conn, "/", cookie);
}

/* Whether the Host header names this server (only checked without a
   token: a page of another site that resolves its name to 127.0.0.1 must
   not read ours). */
static bool
s_host_ok (const s_web_t *w, struct MHD_Connection *conn)
{
    if (*w->token)
        return true;
    const char *host = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Host");
    if (!host)
        return false;
    char want[3][96];
    snprintf (want[0], sizeof want[0], "%s:%d", w->host, w->port);
    snprintf (want[1], sizeof want[1], "localhost:%d", w->port);
    snprintf (want[2], sizeof want[2], "127.0.0.1:%d", w->port);
    for (int i = 0; i < 3; i++)
        if (strcasecmp (host, want[i]) == 0)
            return true;
    return false;
}

/* A POST's checks: same origin (when the browser says) and the CSRF token. */
static bool
s_post_ok (const s_web_t *w, struct MHD_Connection *conn, const char *session)
{
    const char *origin = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Host");
    if (origin
        && (!host || strncmp (origin, "http", 4) != 0 || !strstr (origin, "://")
            || strcasecmp (strstr (origin, "://") + 3, host) != 0))
        return false;
    const char *got = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "X-CSRF-Token");
    char want[2 * crypto_auth_BYTES + 1];
    s_mac (w, "csrf", session, want);
    return got && s_equal (want, got);
}

/* ---- the broker --------------------------------------------------------------- */

/* The reply as JSON (new reference), or NULL. */
static json_t *
s_reply_json (nf_msg_t *reply)
{
    nf_buf_t b;
    nf_buf_init (&b);
    char err[128];
    json_t *j = NULL;
    if (nf_mp_to_json (nf_msg_root (reply), &b, err, sizeof err) == 0)
        j = json_loadb (b.data, b.len, 0, NULL);
    nf_buf_free (&b);
    return j;
}

/* The reply's error as {field: message}: "options.count: must be ..." is
   the count field's, "niche: empty" the niche's; the others under "". */
static json_t *
s_fields (const char *error)
{
    json_t *fields = json_object ();
    const char *text = error ? error : "";
    if (strncmp (text, "invalid submission: ", 20) == 0)
        text += 20;
    char *copy = strdup (text);
    char *save = NULL;
    for (char *part = copy ? strtok_r (copy, ";", &save) : NULL; part;
         part = strtok_r (NULL, ";", &save)) {
        while (*part == ' ')
            part++;
        const char *colon = strstr (part, ": ");
        char key[64] = "";
        if (colon && (size_t) (colon - part) < sizeof key) {
            const char *k = strncmp (part, "options.", 8) == 0 ? part + 8 : part;
            memcpy (key, k, (size_t) (colon - k));
            key[colon - k] = 0;
            if (!nf_jobopt_find (key, strlen (key)) && strcmp (key, "niche") != 0
                && strcmp (key, "sub_niche") != 0 && strcmp (key, "priority") != 0)
                key[0] = 0;
        }
        const char *msg = key[0] ? colon + 2 : part;
        const char *had = json_string_value (json_object_get (fields, key));
        nf_buf_t b;
        nf_buf_init (&b);
        nf_buf_printf (&b, "%s%s%s", had ? had : "", had ? "; " : "", msg);
        json_object_set_new (fields, key, json_string (b.data));
        nf_buf_free (&b);
    }
    free (copy);
    return fields;
}

/* Ask SERVICE with REQUEST (stolen) and answer the page with the reply:
   200 when ok, 404 for no such job, REFUSED for another refusal, 503 when
   the broker does not answer. */
static enum MHD_Result
s_proxy (s_web_t *w, struct MHD_Connection *conn, const char *service, json_t *request,
         unsigned refused)
{
    nf_msg_t *reply = NULL;
    char err[256];
    nf_err_t rc = nf_web_hub_call (w->hub, service, request, &reply, err, sizeof err);
    json_decref (request);
    if (rc != NF_OK) {
        char msg[320];
        snprintf (msg, sizeof msg, "the broker does not answer (%s)", err);
        return s_error (w, conn, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
    }
    json_t *j = s_reply_json (reply);
    nf_msg_destroy (&reply);
    if (!json_is_object (j)) {
        json_decref (j);
        return s_error (w, conn, MHD_HTTP_BAD_GATEWAY, "the broker's reply is not a map");
    }
    unsigned code = MHD_HTTP_OK;
    if (!json_is_true (json_object_get (j, "ok"))) {
        const char *e = json_string_value (json_object_get (j, "error"));
        code = e && strcmp (e, "no such job") == 0 ? MHD_HTTP_NOT_FOUND : refused;
        if (strcmp (service, "nf.submit") == 0)
            json_object_set_new (j, "fields", s_fields (e));
    }
    return s_json (w, conn, code, j);
}

/* nf.export of JOB in FORMAT (version 0: the newest): NF_OK with *REPLY
   and *CONTENT (into it), or an answer already queued in *RC. */
static bool
s_export_fetch (s_web_t *w, struct MHD_Connection *conn, int64_t job, const char *format,
                int64_t version, nf_msg_t **reply, const msgpack_object **content,
                enum MHD_Result *rc)
{
    json_t *req = json_pack ("{s:I, s:s}", "job_id", (json_int_t) job, "format", format);
    if (version > 0)
        json_object_set_new (req, "version", json_integer (version));
    char err[256];
    nf_err_t e = nf_web_hub_call (w->hub, "nf.export", req, reply, err, sizeof err);
    json_decref (req);
    if (e != NF_OK) {
        *rc = s_error (w, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the broker does not answer");
        return false;
    }
    bool ok = false;
    nf_mp_get_bool (nf_msg_root (*reply), "ok", &ok);
    *content = ok ? nf_mp_get (nf_msg_root (*reply), "content") : NULL;
    if (!*content || (*content)->type != MSGPACK_OBJECT_BIN) {
        char *msg = nf_mp_dup_str (nf_msg_root (*reply), "error");
        *rc = s_error (w, conn, MHD_HTTP_NOT_FOUND, msg ? msg : "no such export");
        free (msg);
        nf_msg_destroy (reply);
        return false;
    }
    return true;
}

/* GET /api/jobs/N/export/FORMAT: the file, as an attachment. */
static enum MHD_Result
s_download (s_web_t *w, struct MHD_Connection *conn, int64_t job, const char *format)
{
    static const char *const types[][2] = {
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"csv", "text/csv; charset=utf-8"},
        {"json", "application/json"}};
    const char *type = NULL;
    for (size_t i = 0; i < 3; i++)
        if (strcmp (format, types[i][0]) == 0)
            type = types[i][1];
    if (!type)
        return s_error (w, conn, MHD_HTTP_NOT_FOUND, "an export is xlsx, csv or json");
    const char *v = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "version");
    nf_msg_t *reply = NULL;
    const msgpack_object *content = NULL;
    enum MHD_Result rc = MHD_NO;
    if (!s_export_fetch (w, conn, job, format, v ? atoll (v) : 0, &reply, &content, &rc))
        return rc;
    int64_t version = 0;
    nf_mp_get_int (nf_msg_root (reply), "version", &version);
    struct MHD_Response *r = s_response (w, type, content->via.bin.ptr, content->via.bin.size);
    char disp[128];
    snprintf (disp, sizeof disp, "attachment; filename=\"nicheflow-job-%lld-v%lld.%s\"",
              (long long) job, (long long) version, format);
    if (r)
        MHD_add_response_header (r, "Content-Disposition", disp);
    nf_msg_destroy (&reply);
    return s_queue (conn, MHD_HTTP_OK, r);
}

/* GET /api/jobs/N/outliers: the newest JSON export, each outlier with
   thumbnail_src (from NF_YOUTUBE_IMG_URL) for the page. */
static enum MHD_Result
s_outliers (s_web_t *w, struct MHD_Connection *conn, int64_t job)
{
    nf_msg_t *reply = NULL;
    const msgpack_object *content = NULL;
    enum MHD_Result rc = MHD_NO;
    if (!s_export_fetch (w, conn, job, "json", 0, &reply, &content, &rc))
        return rc;
    json_error_t jerr;
    json_t *doc = json_loadb (content->via.bin.ptr, content->via.bin.size, 0, &jerr);
    int64_t version = 0, versions = 0;
    nf_mp_get_int (nf_msg_root (reply), "version", &version);
    nf_mp_get_int (nf_msg_root (reply), "versions", &versions);
    nf_msg_destroy (&reply);
    if (!json_is_object (doc)) {
        json_decref (doc);
        return s_error (w, conn, MHD_HTTP_BAD_GATEWAY, "the job's JSON export does not parse");
    }
    size_t i;
    json_t *row;
    json_array_foreach (json_object_get (doc, "outliers"), i, row)
    {
        const char *id = json_string_value (json_object_get (row, "video_id"));
        size_t n = id ? strlen (id) : 0;
        bool plain = n > 0 && n <= 64;
        for (size_t k = 0; plain && k < n; k++)
            plain = isalnum ((unsigned char) id[k]) || id[k] == '-' || id[k] == '_';
        if (plain && *w->img_url) {
            char src[700];
            snprintf (src, sizeof src, "%s/vi/%s/mqdefault.jpg", w->img_url, id);
            json_object_set_new (row, "thumbnail_src", json_string (src));
        }
    }
    return s_json (w, conn, MHD_HTTP_OK,
                   json_pack ("{s:b, s:I, s:I, s:o}", "ok", 1, "version", (json_int_t) version,
                              "versions", (json_int_t) versions, "export", doc));
}

/* GET /api/options: what the New job form offers, from the tables the
   broker checks submissions with. */
static enum MHD_Result
s_options (s_web_t *w, struct MHD_Connection *conn)
{
    json_t *opts = json_array ();
    for (size_t i = 0; i < nf_jobopts_count; i++) {
        const nf_jobopt_t *o = &nf_jobopts[i];
        json_t *enums = json_array ();
        char *list = o->enums ? strdup (o->enums) : NULL, *save = NULL;
        for (char *t = list ? strtok_r (list, " ", &save) : NULL; t;
             t = strtok_r (NULL, " ", &save))
            json_array_append_new (enums, json_string (t));
        free (list);
        json_array_append_new (
            opts, json_pack ("{s:s, s:s, s:s, s:I, s:I, s:o, s:s}", "key", o->key, "flag", o->flag,
                             "type", o->is_int ? "int" : "string", "min", (json_int_t) o->min,
                             "max", (json_int_t) o->max, "enums", enums, "want", o->want));
    }
    json_t *statuses = json_array ();
    size_t n = 0;
    const nf_job_status_t *st = nf_job_statuses (&n);
    for (size_t i = 0; i < n; i++)
        json_array_append_new (statuses, json_pack ("{s:s, s:b, s:s}", "name", st[i].name, "final",
                                                    (st[i].flags & NF_JOBS_FINAL) != 0, "about",
                                                    st[i].about));
    json_t *stages = json_array ();
    const nf_stage_t *sg = nf_stages (&n);
    for (size_t i = 0; i < n; i++)
        json_array_append_new (
            stages, json_pack ("{s:s, s:s, s:s?, s:s}", "service", sg[i].service, "scope",
                               sg[i].scope == NF_SCOPE_JOB ? "job" : "video", "state_in",
                               sg[i].state_in, "state_out", sg[i].state_out));
    json_t *prios = json_array ();
    for (int p = 0; p < 4; p++)
        json_array_append_new (prios, json_string (nf_priority_name (p)));
    return s_json (w, conn, MHD_HTTP_OK,
                   json_pack ("{s:b, s:o, s:o, s:o, s:o, s:s}", "ok", 1, "options", opts,
                              "statuses", statuses, "stages", stages, "priorities", prios,
                              "version", NF_VERSION));
}

/* ---- live streams ---------------------------------------------------------------- */

typedef struct {
    s_web_t *w;
    int64_t job;       /* the job streamed, or 0: the list */
    char status[24];   /* the list's status filter, or "" */
    int64_t limit;     /* the list's length */
    uint64_t seen;     /* the hub's event count at the last fetch */
    int64_t last_push; /* ms */
    bool first, done;  /* nothing sent yet; the stream ends */
    nf_buf_t out;      /* bytes to send */
    size_t off;        /* of them, sent */
} s_stream_t;

/* One event of the stream into s->out (blocks up to a second waiting). */
static void
s_stream_next (s_stream_t *s)
{
    int64_t now = nf_clock_ms ();
    bool due = s->first || now - s->last_push >= STREAM_RESYNC;
    if (!due) {
        uint64_t seq = nf_web_hub_wait (s->w->hub, s->job, s->seen, 1000);
        now = nf_clock_ms ();
        if (seq != s->seen && now - s->last_push < STREAM_SPACING)
            usleep ((useconds_t) (STREAM_SPACING - (now - s->last_push)) * 1000);
        due = seq != s->seen || now - s->last_push >= STREAM_RESYNC;
    }
    if (!due || s->w->stopping)
        return;
    s->seen = nf_web_hub_seq (s->w->hub, s->job); /* before the fetch: a later change is seen */
    json_t *req = s->job ? json_pack ("{s:I}", "job_id", (json_int_t) s->job)
                         : json_pack ("{s:I}", "limit", (json_int_t) s->limit);
    if (!s->job && s->status[0])
        json_object_set_new (req, "status", json_string (s->status));
    nf_msg_t *reply = NULL;
    char err[256];
    nf_err_t rc =
        nf_web_hub_call (s->w->hub, s->job ? "nf.status" : "nf.list", req, &reply, err, sizeof err);
    json_decref (req);
    json_t *j = rc == NF_OK ? s_reply_json (reply) : NULL;
    nf_msg_destroy (&reply);
    if (!j)
        j = json_pack ("{s:b, s:b, s:s}", "ok", 0, "unreachable", 1, "error",
                       rc == NF_OK ? "the broker's reply is not a map" : err);
    char *text = json_dumps (j, JSON_COMPACT);
    bool ok = json_is_true (json_object_get (j, "ok"));
    const char *status = json_string_value (json_object_get (json_object_get (j, "job"), "status"));
    nf_buf_printf (&s->out, "event: %s\ndata: %s\n\n",
                   ok                                                  ? "status"
                   : json_is_true (json_object_get (j, "unreachable")) ? "broker"
                                                                       : "refused",
                   text ? text : "{}");
    if (s->job && ok && status && nf_job_status_final (status)) {
        nf_buf_puts (&s->out, "event: end\ndata: {}\n\n");
        s->done = true;
    }
    else if (!ok && !json_is_true (json_object_get (j, "unreachable")))
        s->done = true; /* no such job: nothing will change */
    free (text);
    json_decref (j);
    s->first = false;
    s->last_push = nf_clock_ms ();
}

static ssize_t
s_stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    s_stream_t *s = cls;
    while (s->off >= s->out.len) {
        if (s->done || s->w->stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        s->out.len = 0;
        s->off = 0;
        s_stream_next (s);
    }
    size_t n = s->out.len - s->off < max ? s->out.len - s->off : max;
    memcpy (buf, s->out.data + s->off, n);
    s->off += n;
    return (ssize_t) n;
}

static void
s_stream_free (void *cls)
{
    s_stream_t *s = cls;
    nf_buf_free (&s->out);
    free (s);
}

static enum MHD_Result
s_events (s_web_t *w, struct MHD_Connection *conn)
{
    s_stream_t *s = calloc (1, sizeof *s);
    if (!s)
        return MHD_NO;
    const char *job = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "job");
    const char *status = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "status");
    const char *limit = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "limit");
    *s = (s_stream_t){.w = w, .job = job ? atoll (job) : 0, .first = true, .limit = 100};
    if (limit && atoll (limit) > 0 && atoll (limit) <= 1000)
        s->limit = atoll (limit);
    if (status && *status)
        snprintf (s->status, sizeof s->status, "%s", status);
    nf_buf_init (&s->out);
    if ((job && s->job <= 0) || (status && *status && !nf_job_status_valid (status))) {
        s_stream_free (s);
        return s_error (w, conn, MHD_HTTP_BAD_REQUEST, "job must be a job id, status a job status");
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 4096, s_stream_read, s, s_stream_free);
    if (!r) {
        s_stream_free (s);
        return MHD_NO;
    }
    s_headers (w, r, "text/event-stream; charset=utf-8");
    MHD_add_response_header (r, "X-Accel-Buffering", "no");
    return s_queue (conn, MHD_HTTP_OK, r);
}

/* ---- routing ------------------------------------------------------------------- */

/* The request body as a JSON object (new reference), or NULL with ERR. */
static json_t *
s_body_object (const s_req_t *req, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = req->body.len
                    ? json_loadb (req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr)
                    : json_object ();
    if (!j)
        snprintf (err, errlen, "the body is not JSON: %s", jerr.text);
    else if (!json_is_object (j)) {
        snprintf (err, errlen, "the body must be a JSON object");
        json_decref (j);
        j = NULL;
    }
    return j;
}

/* /api/jobs/N[/WHAT]. */
static enum MHD_Result
s_job_route (s_web_t *w, struct MHD_Connection *conn, const char *rest, bool post)
{
    char *end = NULL;
    long long job = strtoll (rest, &end, 10);
    if (job <= 0 || end == rest || (*end && *end != '/'))
        return s_error (w, conn, MHD_HTTP_NOT_FOUND, "no such page: a job is /api/jobs/ID");
    const char *what = *end ? end + 1 : "";
    if (!post && !*what)
        return s_proxy (w, conn, "nf.status", json_pack ("{s:I}", "job_id", (json_int_t) job),
                        MHD_HTTP_BAD_REQUEST);
    if (!post && strcmp (what, "outliers") == 0)
        return s_outliers (w, conn, job);
    if (!post && strncmp (what, "export/", 7) == 0)
        return s_download (w, conn, job, what + 7);
    static const char *const actions[] = {"cancel", "retry", "resume", "purge"};
    for (size_t i = 0; post && i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp (what, actions[i]) == 0) {
            char service[16];
            snprintf (service, sizeof service, "nf.%s", actions[i]);
            nf_info ("web: %s job %lld", service, job);
            return s_proxy (w, conn, service, json_pack ("{s:I}", "job_id", (json_int_t) job),
                            MHD_HTTP_CONFLICT);
        }
    return s_error (w, conn, post ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND,
                    "no such page");
}

static enum MHD_Result
s_route (s_web_t *w, struct MHD_Connection *conn, const char *url, const char *method,
         const s_req_t *req)
{
    bool get = strcmp (method, "GET") == 0, post = strcmp (method, "POST") == 0;
    if (!get && !post)
        return s_error (w, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or POST only");
    if (!s_host_ok (w, conn))
        return s_error (w, conn, MHD_HTTP_MISDIRECTED_REQUEST,
                        "this nf-web answers to its loopback address only (its Host header)");
    if (get && strcmp (url, "/app.css") == 0)
        return s_queue (conn, MHD_HTTP_OK,
                        s_response (w, "text/css; charset=utf-8", nf_web_assets[ASSET_CSS],
                                    strlen (nf_web_assets[ASSET_CSS])));
    if (get && strcmp (url, "/app.js") == 0)
        return s_queue (conn, MHD_HTTP_OK,
                        s_response (w, "text/javascript; charset=utf-8", nf_web_assets[ASSET_JS],
                                    strlen (nf_web_assets[ASSET_JS])));
    if (get && strcmp (url, "/favicon.ico") == 0)
        return s_queue (conn, MHD_HTTP_NO_CONTENT, s_response (w, "image/x-icon", "", 0));
    if (req->too_big)
        return s_error (w, conn, MHD_HTTP_CONTENT_TOO_LARGE, "the body is over 64 KiB");
    if (post && strcmp (url, "/login") == 0)
        return s_login (w, conn, req);
    char session[128];
    if (!s_session (w, conn, session, sizeof session)) {
        if (get && strcmp (url, "/") == 0)
            return s_login_page (w, conn, MHD_HTTP_OK, NULL);
        if (strncmp (url, "/api/", 5) == 0)
            return s_error (w, conn, MHD_HTTP_UNAUTHORIZED, "log in first (NF_WEB_TOKEN)");
        return s_redirect (w, conn, "/", NULL);
    }
    char csrf[2 * crypto_auth_BYTES + 1];
    s_mac (w, "csrf", session, csrf);
    if (post && !s_post_ok (w, conn, session)) {
        nf_warn ("web: a POST to %s without the right CSRF token or origin refused", url);
        return s_json (w, conn, MHD_HTTP_FORBIDDEN,
                       json_pack ("{s:b, s:s, s:b}", "ok", 0, "error",
                                  "CSRF token missing or wrong (or another origin): reload the "
                                  "page",
                                  "csrf", 1));
    }
    if (post && strcmp (url, "/logout") == 0)
        return s_redirect (w, conn, "/",
                           "nf_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    if (get && strcmp (url, "/") == 0) {
        const char *vars[] = {
            "CSRF", csrf, "VERSION", NF_VERSION, "LOGOUT", *w->token ? "" : "hidden", NULL};
        return s_page (w, conn, MHD_HTTP_OK, ASSET_INDEX, vars);
    }
    if (get && strcmp (url, "/api/session") == 0)
        return s_json (
            w, conn, MHD_HTTP_OK,
            json_pack ("{s:b, s:s, s:b}", "ok", 1, "csrf", csrf, "login", *w->token != 0));
    if (get && strcmp (url, "/api/options") == 0)
        return s_options (w, conn);
    if (get && strcmp (url, "/api/ops") == 0) {
        json_t *ops = nf_web_hub_ops (w->hub);
        json_object_set_new (ops, "ok", json_true ());
        return s_json (w, conn, MHD_HTTP_OK, ops);
    }
    if (get && strcmp (url, "/api/events") == 0)
        return s_events (w, conn);
    if (strcmp (url, "/api/jobs") == 0 && get) {
        const char *status = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "status");
        const char *limit = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "limit");
        json_t *r = json_pack ("{s:I}", "limit", (json_int_t) (limit ? atoll (limit) : 100));
        if (status && *status)
            json_object_set_new (r, "status", json_string (status));
        return s_proxy (w, conn, "nf.list", r, MHD_HTTP_BAD_REQUEST);
    }
    if (strcmp (url, "/api/jobs") == 0 && post) {
        char err[256];
        json_t *body = s_body_object (req, err, sizeof err);
        if (!body)
            return s_error (w, conn, MHD_HTTP_BAD_REQUEST, err);
        nf_info ("web: a submission");
        return s_proxy (w, conn, "nf.submit", body, MHD_HTTP_UNPROCESSABLE_CONTENT);
    }
    if (strncmp (url, "/api/jobs/", 10) == 0)
        return s_job_route (w, conn, url + 10, post);
    return s_error (w, conn, MHD_HTTP_NOT_FOUND, "no such page");
}

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    s_web_t *w = cls;
    s_req_t *req = *con_cls;
    if (!req) {
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        nf_buf_init (&req->body);
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_size) {
        if (req->body.len + *upload_size > BODY_MAX)
            req->too_big = true;
        else
            nf_buf_append (&req->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return s_route (w, conn, url, method, req);
}

static void
s_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    s_req_t *req = *con_cls;
    if (req) {
        nf_buf_free (&req->body);
        free (req);
        *con_cls = NULL;
    }
}

static void
s_mhd_log (void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf (line, sizeof line, fmt, ap);
    size_t n = strlen (line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    nf_warn ("web: %s", line);
}

/* ---- main -------------------------------------------------------------------- */

/* The Content-Security-Policy: everything from self, images also from the
   thumbnails' origin (scheme://host[:port] of IMG_URL). */
static void
s_csp (s_web_t *w)
{
    char origin[256] = "";
    const char *scheme = strstr (w->img_url, "://");
    if (scheme) {
        const char *slash = strchr (scheme + 3, '/');
        size_t n = slash ? (size_t) (slash - w->img_url) : strlen (w->img_url);
        bool clean = n < sizeof origin;
        for (size_t i = 0; clean && i < n; i++)
            clean = w->img_url[i] > ' ' && w->img_url[i] != ';' && w->img_url[i] != ',';
        if (clean)
            snprintf (origin, sizeof origin, " %.*s", (int) n, w->img_url);
    }
    snprintf (w->csp, sizeof w->csp,
              "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
              "img-src 'self'%s; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
              origin);
}

static const char *s_usage = "Usage: nf-web [settings]\n"
                             "  serves the web page on NF_WEB_BIND (default 127.0.0.1:8090)\n"
                             "Exit codes: 0 stopped by a signal, 2 bad settings, 3 cannot "
                             "listen or reach the broker's sockets.\n\n";

int
main (int argc, char **argv)
{
    nf_config_t *config = nf_config_new ("nf-web", NF_PROG_CLIENT | NF_PROG_WEB);
    if (!config || nf_config_load (config, argc, argv) != 0) {
        nf_config_destroy (&config); /* said why on stderr */
        return 2;
    }
    if (nf_config_wants_version (config) || nf_config_wants_help (config)
        || nf_config_argc (config) > 0) {
        bool help = !nf_config_wants_version (config);
        if (nf_config_wants_version (config))
            printf ("nf-web %s\n", NF_VERSION);
        else {
            fputs (s_usage, nf_config_argc (config) ? stderr : stdout);
            nf_config_print_help (config, nf_config_argc (config) ? stderr : stdout);
        }
        int rc = help && nf_config_argc (config) ? 2 : 0;
        nf_config_destroy (&config);
        return rc;
    }
    nf_config_apply_logging (config);
    s_web_t w = {.token = nf_config_str (config, NF_CFG_WEB_TOKEN),
                 .img_url = nf_config_str (config, NF_CFG_YOUTUBE_IMG_URL)};
    struct sockaddr_in addr;
    char err[512];
    int rc = 0;
    const char *bind = nf_config_str (config, NF_CFG_WEB_BIND);
    if (sodium_init () < 0) {
        fprintf (stderr, "nf-web: libsodium does not start\n");
        rc = 3;
    }
    else if (nf_inet_parse (bind, &addr, err, sizeof err) != NF_OK) {
        fprintf (stderr, "nf-web: NF_WEB_BIND %s\n", err);
        rc = 2;
    }
    else if (*w.token && strlen (w.token) < TOKEN_MIN) {
        fprintf (stderr, "nf-web: NF_WEB_TOKEN is shorter than %d characters\n", TOKEN_MIN);
        rc = 2;
    }
    else if (!*w.token && !nf_inet_loopback (&addr)) {
        fprintf (stderr,
                 "nf-web: NF_WEB_BIND %s is not a loopback address: set NF_WEB_TOKEN_FILE (or "
                 "NF_WEB_TOKEN) to a token of %d characters or more, which the page will ask "
                 "for\n",
                 bind, TOKEN_MIN);
        rc = 2;
    }
    nf_curve_t *curve = NULL;
    if (rc == 0 && nf_curve_new (config, NF_PROG_CLIENT, &curve, err, sizeof err) != 0) {
        fprintf (stderr, "nf-web: %s\n", err);
        rc = 2;
    }
    if (rc == 0) {
        w.hub = nf_web_hub_new (nf_config_str (config, NF_CFG_BROKER_CLIENTS),
                                nf_config_str (config, NF_CFG_BROKER_PUB),
                                nf_config_int (config, NF_CFG_TIMEOUT_MS),
                                (size_t) nf_config_int (config, NF_CFG_MAX_FRAME), curve);
        rc = w.hub ? 0 : 3;
    }
    struct MHD_Daemon *daemon = NULL;
    if (rc == 0) {
        if (*w.token)
            crypto_generichash (w.key, sizeof w.key, (const unsigned char *) w.token,
                                strlen (w.token), (const unsigned char *) "nf-web-session", 14);
        else
            randombytes_buf (w.key, sizeof w.key);
        inet_ntop (AF_INET, &addr.sin_addr, w.host, sizeof w.host);
        s_csp (&w);
        daemon = MHD_start_daemon (
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
            NULL, NULL, s_answer, &w, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned) 128, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) 32,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 120, MHD_OPTION_NOTIFY_COMPLETED, s_completed,
            NULL, MHD_OPTION_END);
        if (!daemon) {
            fprintf (stderr, "nf-web: cannot listen on %s: %s\n", bind, strerror (errno));
            rc = 3;
        }
    }
    if (rc == 0) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
        w.port = info ? info->port : ntohs (addr.sin_port);
        printf ("nf-web: listening on http://%s:%d/%s\n", w.host, w.port,
                *w.token ? " (the page asks for NF_WEB_TOKEN)" : "");
        fflush (stdout);
        nf_info ("web: listening on %s:%d, broker %s", w.host, w.port,
                 nf_config_str (config, NF_CFG_BROKER_CLIENTS));
        while (!zsys_interrupted)
            zclock_sleep (200);
        nf_info ("web: stopping");
        w.stopping = true;
        MHD_stop_daemon (daemon);
    }
    nf_web_hub_destroy (&w.hub);
    nf_curve_destroy (&curve);
    nf_config_destroy (&config);
    return rc;
}
