/*  nf-submit: enqueue niches and look after jobs, as an MDP/0.1 client of
    the broker (it never touches the database). Usage and exit codes are in
    s_usage below and in the README. */
#include "nf_client.h"
#include "nf_config.h"
#include "nf_jobopts.h"
#include "nf_log.h"
#include "nf_states.h"
#include "nf_util.h"
#include "nf_version.h"

#include <czmq.h>
#include <jansson.h>
#include <unistd.h>

enum {
    EXIT_OK = 0,          /* done; a waited job completed */
    EXIT_REFUSED = 1,     /* the broker refused the request (its message says why) */
    EXIT_USAGE = 2,       /* bad arguments */
    EXIT_UNREACHABLE = 3, /* no answer from the broker */
    EXIT_PARTIAL = 4,     /* a waited job ended partial */
    EXIT_FAILED = 5,      /* a waited job ended failed */
    EXIT_CANCELLED = 6,   /* a waited job ended cancelled */
};

static const char *s_usage =
    "Usage:\n"
    "  nf-submit NICHE [--sub-niche S] [--count N] [--top-n N] [--since YYYY-MM-DD]\n"
    "            [--until YYYY-MM-DD] [--region CC] [--lang L[,L...]] [--translate]\n"
    "            [--min-views N]\n"
    "            [--max-age-days N] [--format long|short|any] [--max-pages N] [--order O]\n"
    "            [--source youtube|template:NAME] [--priority high|standard|bulk|background]\n"
    "            [--wait [-o FILE] [--timeout S]]\n"
    "  nf-submit --file NICHES.txt [options as above] [--wait [-o DIR]]\n"
    "            (one niche a line: 'niche | sub-niche'; # starts a comment)\n"
    "  nf-submit status [JOB] [--json]      a job, or the recent jobs\n"
    "  nf-submit list [--json] [--limit N]  recent jobs\n"
    "  nf-submit cancel JOB | retry JOB\n"
    "  nf-submit purge JOB                  delete a finished job and everything of it\n"
    "  nf-submit resume JOB [--wait [-o FILE]]\n"
    "  nf-submit wait JOB [-o FILE] [--timeout S]\n"
    "  nf-submit export JOB -o FILE [--format xlsx|csv|json] [--export-version N]\n"
    "Exit codes: 0 done (a waited job completed), 1 refused by the broker, 2 bad arguments,\n"
    "3 broker unreachable, 4 partial, 5 failed, 6 cancelled (waited jobs; the worst wins).\n\n";

/* The video states: the first NFLOW in pipeline order, then the two ends
   off the pipeline. */
static const char *const s_flow[] = {"DISCOVERED", "RAW",      "CLEANED",  "VALIDATED", "OUTLIER",
                                     "READY",      "EXPORTED", "REJECTED", "FAILED"};
#define NFLOW   7
#define NSTATES (sizeof s_flow / sizeof s_flow[0])

typedef struct {
    nf_client_t *client;
    const char *pub;   /* broker PUB endpoint */
    nf_curve_t *curve; /* CURVE keys, or NULL */
    bool json;         /* --json */
    bool tty;          /* progress redrawn in place on stderr */
    double timeout_s;  /* --timeout of a wait; 0 none */
} s_ctx_t;

typedef struct {
    int64_t id;
    char *label;     /* niche (| sub-niche) */
    char *out;       /* download here when done, or NULL */
    bool pick_ext;   /* OUT lacks its extension: xlsx if exported, else the first format */
    json_t *exports; /* last nf.status exports (formats) */
    json_t *job;     /* last nf.status job object */
    json_t *counts;  /* last nf.status counts */
    bool done;       /* final status seen */
    int64_t started; /* ms, for the ETA */
    char last[512];  /* last plain line printed */
} s_job_t;

/* ---- requests -------------------------------------------------------------- */

static int
s_request (s_ctx_t *ctx, const char *service, const nf_buf_t *body, nf_msg_t **reply, bool quiet)
{
    char err[300];
    if (nf_client_request (ctx->client, service, body->data, body->len, reply, err, sizeof err)
        != 0) {
        if (!quiet)
            fprintf (stderr, "nf-submit: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    bool ok = false;
    nf_mp_get_bool (nf_msg_root (*reply), "ok", &ok);
    if (!ok) {
        char *msg = nf_mp_dup_str (nf_msg_root (*reply), "error");
        fprintf (stderr, "nf-submit: %s\n", msg ? msg : "request refused");
        free (msg);
        return EXIT_REFUSED;
    }
    return EXIT_OK;
}

/* The body {v, job_id, format, version} of nf.export (version when > 0). */
static int
s_export_request (s_ctx_t *ctx, int64_t job, const char *format, int64_t version, nf_msg_t **reply)
{
    nf_buf_t body;
    nf_buf_init (&body);
    msgpack_packer pk;
    nf_pk_init_buf (&pk, &body);
    msgpack_pack_map (&pk, version > 0 ? 4 : 3);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_int (&pk, "job_id", job);
    nf_pk_kv_str (&pk, "format", format);
    if (version > 0)
        nf_pk_kv_int (&pk, "version", version);
    int rc = s_request (ctx, "nf.export", &body, reply, false);
    nf_buf_free (&body);
    return rc;
}

/* A request whose body is {v, job_id}. */
static int
s_job_request (s_ctx_t *ctx, const char *service, int64_t job, nf_msg_t **reply, bool quiet)
{
    nf_buf_t body;
    nf_buf_init (&body);
    nf_client_request_int (&body, "job_id", job);
    int rc = s_request (ctx, service, &body, reply, quiet);
    nf_buf_free (&body);
    return rc;
}

/* KEY of the reply as a jansson value (new reference), or NULL. */
static json_t *
s_reply_json (nf_msg_t *reply, const char *key)
{
    return nf_mp_get_json (nf_msg_root (reply), key);
}

static int
s_parse_job (const char *text, int64_t *job)
{
    char *end = NULL;
    long long v = text ? strtoll (text, &end, 10) : 0;
    if (!text || !*text || *end || v <= 0) {
        fprintf (stderr, "nf-submit: '%s' is not a job id\n%s", text ? text : "", s_usage);
        return -1;
    }
    *job = v;
    return 0;
}

/* Exit code of a final job status. */
static int
s_status_code (const char *status)
{
    if (!status)
        return EXIT_UNREACHABLE;
    if (strcmp (status, "completed") == 0)
        return EXIT_OK;
    if (strcmp (status, "partial") == 0)
        return EXIT_PARTIAL;
    if (strcmp (status, "cancelled") == 0)
        return EXIT_CANCELLED;
    return EXIT_FAILED;
}

static bool
s_final (const char *status)
{
    return status
           && (strcmp (status, "completed") == 0 || strcmp (status, "partial") == 0
               || strcmp (status, "failed") == 0 || strcmp (status, "cancelled") == 0);
}

/* ---- export ------------------------------------------------------------------ */

/* The export format a file name asks for (its extension), or NULL. */
static const char *
s_format_of (const char *path)
{
    const char *dot = strrchr (path, '.'), *slash = strrchr (path, '/');
    if (dot && (!slash || dot > slash)
        && (!strcmp (dot, ".xlsx") || !strcmp (dot, ".csv") || !strcmp (dot, ".json")))
        return dot + 1;
    return NULL;
}

/* The format and file of `export -o OUT [--format FORMAT]` into PATH: the
   extension decides when there is no --format; a file name without one of
   the three extensions gets the format's, said on stderr; an extension that
   contradicts --format is refused. EXIT_OK or EXIT_USAGE. */
static int
s_export_target (const char *out, const char *format, const char **fmt, char *path, size_t cap)
{
    const char *ext = s_format_of (out);
    if (format && strcmp (format, "xlsx") && strcmp (format, "csv") && strcmp (format, "json")) {
        fprintf (stderr, "nf-submit: --format: '%s' must be xlsx, csv or json\n", format);
        return EXIT_USAGE;
    }
    if (format && ext && strcmp (format, ext) != 0) {
        fprintf (stderr,
                 "nf-submit: -o %s names a .%s file but --format is %s; name it .%s or drop "
                 "--format\n",
                 out, ext, format, format);
        return EXIT_USAGE;
    }
    *fmt = format ? format : ext ? ext : "xlsx";
    if (ext)
        snprintf (path, cap, "%s", out);
    else {
        snprintf (path, cap, "%s.%s", out, *fmt);
        fprintf (stderr, "nf-submit: writing %s (%s has no .xlsx, .csv or .json extension)\n", path,
                 out);
    }
    return EXIT_OK;
}

/* Download FORMAT of export VERSION (0: the newest) of JOB into OUT. */
static int
s_export (s_ctx_t *ctx, int64_t job, const char *format, int64_t version, const char *out)
{
    nf_msg_t *reply = NULL;
    int rc = s_export_request (ctx, job, format, version, &reply);
    const msgpack_object *content =
        rc == EXIT_OK ? nf_mp_get (nf_msg_root (reply), "content") : NULL;
    if (rc == EXIT_OK && (!content || content->type != MSGPACK_OBJECT_BIN)) {
        fprintf (stderr, "nf-submit: the broker's export reply has no content\n");
        rc = EXIT_REFUSED;
    }
    else if (content) {
        /* Write beside the target, then rename: a reader never sees half a file. */
        char tmp[4096];
        snprintf (tmp, sizeof tmp, "%s.part", out);
        FILE *f = fopen (tmp, "wb");
        bool ok =
            f
            && fwrite (content->via.bin.ptr, 1, content->via.bin.size, f) == content->via.bin.size;
        ok = f && fclose (f) == 0 && ok;
        if (!ok || rename (tmp, out) != 0) {
            fprintf (stderr, "nf-submit: cannot write %s: %s\n", out, strerror (errno));
            unlink (tmp);
            rc = EXIT_REFUSED;
        }
        else {
            int64_t v = 0, n = 0;
            nf_mp_get_int (nf_msg_root (reply), "version", &v);
            nf_mp_get_int (nf_msg_root (reply), "versions", &n);
            if (n > 1)
                fprintf (stderr, "nf-submit: export version %lld of %lld\n", (long long) v,
                         (long long) n);
            printf ("%s\n", out);
        }
    }
    nf_msg_destroy (&reply);
    return rc;
}

/* ---- progress ------------------------------------------------------------------ */

static int64_t
s_count (const json_t *counts, const char *state)
{
    return json_integer_value (json_object_get (counts, state));
}

/* Videos past state index K of the flow (or out of it: rejected, failed). */
static int64_t
s_past (const json_t *counts, size_t k)
{
    int64_t n = s_count (counts, "REJECTED") + s_count (counts, "FAILED");
    for (size_t i = k + 1; i < NFLOW; i++)
        n += s_count (counts, s_flow[i]);
    return n;
}

static void
s_bar (nf_buf_t *b, const char *name, int64_t done, int64_t total)
{
    const int width = 24;
    int fill = total > 0 ? (int) (done * width / total) : 0;
    if (fill > width)
        fill = width;
    nf_buf_printf (b, "  %-9s [", name);
    for (int i = 0; i < width; i++)
        nf_buf_puts (b, i < fill ? "#" : ".");
    nf_buf_printf (b, "] %lld/%lld\n", (long long) done, (long long) total);
}

/* Render one job: a header, a bar per stage, the funnel. */
/* What a job is called in progress and status: its label when the caller
   named it, else "niche | sub-niche" from the last nf.status. */
static void
s_label (const s_job_t *j, char *out, size_t cap)
{
    const char *niche = json_string_value (json_object_get (j->job, "niche"));
    const char *sub = json_string_value (json_object_get (j->job, "sub_niche"));
    if (j->label)
        snprintf (out, cap, "%s", j->label);
    else
        snprintf (out, cap, "%s%s%s", niche ? niche : "", sub && *sub ? " | " : "",
                  sub && *sub ? sub : "");
}

static void
s_render (const s_job_t *j, nf_buf_t *b, double *fraction)
{
    const char *status = json_string_value (json_object_get (j->job, "status"));
    const char *phase = json_string_value (json_object_get (j->job, "phase"));
    const json_t *opts = json_object_get (j->job, "options");
    int64_t count = json_integer_value (json_object_get (opts, "count"));
    int64_t top = json_integer_value (json_object_get (opts, "top_n"));
    int64_t total = 0;
    const char *k;
    json_t *v;
    json_object_foreach (j->counts, k, v)
    {
        total += json_integer_value (v);
    }
    int64_t outliers = s_count (j->counts, "OUTLIER") + s_count (j->counts, "READY")
                       + s_count (j->counts, "EXPORTED");
    char label[512];
    s_label (j, label, sizeof label);
    nf_buf_printf (b, "job %lld  %s  %s  %s\n", (long long) j->id, label, status ? status : "?",
                   phase && !s_final (status) ? phase : "");
    s_bar (b, "discover", total, count);
    s_bar (b, "scrape", s_past (j->counts, 0), total);
    s_bar (b, "sanitize", s_past (j->counts, 1), total);
    s_bar (b, "geo", s_past (j->counts, 2), total);
    bool analyzed = outliers > 0
                    || (phase && strcmp (phase, "analyze") != 0 && s_past (j->counts, 3) == total
                        && total > 0 && s_count (j->counts, "VALIDATED") == 0);
    s_bar (b, "analyze", analyzed ? 1 : 0, 1);
    s_bar (b, "architect", s_count (j->counts, "READY") + s_count (j->counts, "EXPORTED"),
           outliers ? outliers : top);
    s_bar (b, "export", s_count (j->counts, "EXPORTED") > 0 ? 1 : 0, 1);
    nf_buf_puts (b, "  funnel:");
    for (size_t i = 0; i < NFLOW; i++)
        nf_buf_printf (b, " %s %lld", s_flow[i], (long long) s_count (j->counts, s_flow[i]));
    nf_buf_printf (b, " | REJECTED %lld FAILED %lld\n", (long long) s_count (j->counts, "REJECTED"),
                   (long long) s_count (j->counts, "FAILED"));
    /* Progress: discovery, then four per-video stages, then the top-N work. */
    double f = count > 0 ? 0.2 * (double) (total < count ? total : count) / (double) count : 0;
    if (total > 0)
        for (size_t s = 0; s < 4; s++)
            f += 0.15 * (double) s_past (j->counts, s) / (double) total;
    f += analyzed ? 0.1 : 0;
    *fraction = s_final (status) ? 1.0 : f > 0.99 ? 0.99 : f;
}

/* Draw every job; on a terminal in place (ANSI), else a line when it changed. */
static void
s_draw (s_ctx_t *ctx, s_job_t *jobs, size_t n, int *drawn)
{
    nf_buf_t b;
    nf_buf_init (&b);
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i].job)
            continue;
        if (!ctx->tty) {
            /* One plain line when something changed: the status and the counts. */
            const char *status = json_string_value (json_object_get (jobs[i].job, "status"));
            nf_buf_t l;
            nf_buf_init (&l);
            nf_buf_printf (&l, "job %lld %s", (long long) jobs[i].id, status ? status : "?");
            for (size_t s = 0; s < NSTATES; s++)
                if (s_count (jobs[i].counts, s_flow[s]))
                    nf_buf_printf (&l, " %s=%lld", s_flow[s],
                                   (long long) s_count (jobs[i].counts, s_flow[s]));
            if (strncmp (l.data, jobs[i].last, sizeof jobs[i].last) != 0) {
                fprintf (stderr, "%s\n", l.data);
                snprintf (jobs[i].last, sizeof jobs[i].last, "%s", l.data);
            }
            nf_buf_free (&l);
            continue;
        }
        double f = 0;
        s_render (&jobs[i], &b, &f);
        double elapsed = (double) (nf_clock_ms () - jobs[i].started) / 1000.0;
        if (!jobs[i].done && f > 0.02)
            nf_buf_printf (&b, "  %.0f%%  elapsed %.0fs  ETA %.0fs\n", f * 100, elapsed,
                           elapsed * (1 - f) / f);
        else
            nf_buf_printf (&b, "  %.0f%%  elapsed %.0fs\n", f * 100, elapsed);
    }
    if (ctx->tty && b.len) {
        for (int i = 0; i < *drawn; i++)
            fputs ("\033[1A\033[2K", stderr);
        fputs (b.data, stderr);
        *drawn = 0;
        for (size_t i = 0; i < b.len; i++)
            *drawn += b.data[i] == '\n';
    }
    fflush (stderr);
    nf_buf_free (&b);
}

/* Re-read every unfinished job from nf.status (the source of truth: PUB
   is lossy, so events only make this happen sooner). 0, or -1 when the
   broker did not answer. */
static int
s_resync (s_ctx_t *ctx, s_job_t *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].done)
            continue;
        nf_msg_t *reply = NULL;
        int rc = s_job_request (ctx, "nf.status", jobs[i].id, &reply, true);
        if (rc == EXIT_UNREACHABLE) {
            nf_msg_destroy (&reply);
            return -1;
        }
        if (rc == EXIT_OK) {
            json_decref (jobs[i].job);
            json_decref (jobs[i].counts);
            jobs[i].job = s_reply_json (reply, "job");
            jobs[i].counts = s_reply_json (reply, "counts");
            json_decref (jobs[i].exports);
            jobs[i].exports = s_reply_json (reply, "exports");
            jobs[i].done = s_final (json_string_value (json_object_get (jobs[i].job, "status")));
        }
        else
            jobs[i].done = true; /* no such job: said on stderr */
        nf_msg_destroy (&reply);
    }
    return 0;
}

/* Wait for every job to end; download exports; the worst exit code. */
static int
s_wait (s_ctx_t *ctx, s_job_t *jobs, size_t n)
{
    zsock_t *sub = zsock_new (ZMQ_SUB);
    nf_curve_client (ctx->curve, sub);
    zsock_connect (sub, "%s", ctx->pub);
    for (size_t i = 0; i < n; i++) {
        char topic[48];
        snprintf (topic, sizeof topic, "nf.job.%lld.", (long long) jobs[i].id);
        zsock_set_subscribe (sub, topic);
        jobs[i].started = nf_clock_ms ();
    }
    /* Re-read every second, at most 100 ms after a video's event (they
       come in bursts; the status request is what costs), and at once after
       a job's own (its status moved: it may have ended). */
    int64_t start = nf_clock_ms (), next_sync = 0, last_sync = 0, last_ok = start;
    int drawn = 0;
    bool warned = false, pending = false, now_please = false;
    int rc = EXIT_OK;
    for (;;) {
        int64_t wait = pending ? last_sync + 100 - nf_clock_ms () : 200;
        zmq_pollitem_t item = {zsock_resolve (sub), 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, wait < 0 ? 0 : (long) wait) < 0 && zsys_interrupted)
            break;
        while (zsock_events (sub) & ZMQ_POLLIN) {
            zmsg_t *m = zmsg_recv (sub);
            /* frames: the topic, the event; only its "type" is read, from
               the msgpack itself (a job's events come by the thousand) */
            zframe_t *body = m && zmsg_size (m) == 2 ? zmsg_last (m) : NULL;
            char err[128];
            nf_msg_t *ev = body ? nf_msg_decode (zframe_data (body), zframe_size (body), 1 << 20,
                                                 err, sizeof err)
                                : NULL;
            const char *type = NULL;
            size_t tlen = 0;
            if (ev && nf_mp_get_str (nf_msg_root (ev), "type", &type, &tlen) && tlen == 3
                && memcmp (type, "job", 3) == 0)
                now_please = true;
            nf_msg_destroy (&ev);
            zmsg_destroy (&m);
            pending = true;
        }
        int64_t now = nf_clock_ms ();
        if (now >= next_sync || now_please || (pending && now >= last_sync + 100)) {
            pending = now_please = false;
            last_sync = now;
            if (s_resync (ctx, jobs, n) == 0) {
                last_ok = now;
                if (warned)
                    fprintf (stderr, "nf-submit: the broker answers again\n");
                warned = false;
                s_draw (ctx, jobs, n, &drawn);
            }
            else if (!warned) {
                fprintf (stderr, "nf-submit: the broker does not answer; still trying\n");
                drawn = 0;
                warned = true;
            }
            next_sync = now + 1000;
        }
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += jobs[i].done;
        if (done == n)
            break;
        if (ctx->timeout_s > 0 && now - start > (int64_t) (ctx->timeout_s * 1000)) {
            fprintf (stderr, "nf-submit: gave up waiting after %.0f s (--timeout)\n",
                     ctx->timeout_s);
            rc = EXIT_UNREACHABLE;
            break;
        }
        if (now - last_ok > 120000) {
            fprintf (stderr, "nf-submit: the broker has not answered for 120 s\n");
            rc = EXIT_UNREACHABLE;
            break;
        }
        if (zsys_interrupted) {
            rc = EXIT_USAGE;
            break;
        }
    }
    zsock_destroy (&sub);
    bool gave_up = rc != EXIT_OK;
    for (size_t i = 0; i < n && !gave_up; i++) {
        const char *status = json_string_value (json_object_get (jobs[i].job, "status"));
        const char *reason = json_string_value (json_object_get (jobs[i].job, "reason"));
        int code = s_status_code (status);
        fprintf (stderr, "job %lld %s%s%s\n", (long long) jobs[i].id, status ? status : "?",
                 reason ? ": " : "", reason ? reason : "");
        if (jobs[i].out && (code == EXIT_OK || code == EXIT_PARTIAL)) {
            char path[4096];
            const char *format = s_format_of (jobs[i].out);
            if (!format)
                format = "xlsx";
            snprintf (path, sizeof path, "%s", jobs[i].out);
            if (jobs[i].pick_ext) {
                format = "xlsx";
                size_t k;
                const json_t *f;
                bool has_xlsx = false;
                json_array_foreach (jobs[i].exports, k, f)
                {
                    has_xlsx |= json_is_string (f) && strcmp (json_string_value (f), "xlsx") == 0;
                }
                if (!has_xlsx && json_is_string (json_array_get (jobs[i].exports, 0)))
                    format = json_string_value (json_array_get (jobs[i].exports, 0));
                snprintf (path, sizeof path, "%s.%s", jobs[i].out, format);
            }
            int e = s_export (ctx, jobs[i].id, format, 0, path);
            if (e != EXIT_OK)
                code = e;
        }
        if (code > rc)
            rc = code;
    }
    for (size_t i = 0; i < n; i++) {
        json_decref (jobs[i].job);
        json_decref (jobs[i].counts);
        json_decref (jobs[i].exports);
        jobs[i].job = jobs[i].counts = jobs[i].exports = NULL;
    }
    return rc;
}

/* ---- submission --------------------------------------------------------------- */

typedef struct {
    const char *values[NF_JOBOPTS_MAX]; /* per nf_jobopts row */
    const char *sub;                    /* --sub-niche */
    const char *priority;               /* --priority */
    const char *file;                   /* --file */
    const char *out;                    /* -o */
    bool wait;                          /* --wait */
} s_submit_args_t;

static int
s_submit_one (s_ctx_t *ctx, const s_submit_args_t *a, const char *niche, const char *sub,
              int64_t *id)
{
    size_t nopt = 0;
    for (size_t o = 0; o < nf_jobopts_count; o++)
        nopt += a->values[o] != NULL;
    nf_buf_t body;
    nf_buf_init (&body);
    msgpack_packer pk;
    nf_pk_init_buf (&pk, &body);
    msgpack_pack_map (&pk, 3 + (sub ? 1 : 0) + (a->priority ? 1 : 0));
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_str (&pk, "niche", niche);
    if (sub)
        nf_pk_kv_str (&pk, "sub_niche", sub);
    if (a->priority)
        nf_pk_kv_str (&pk, "priority", a->priority);
    nf_pk_str (&pk, "options");
    msgpack_pack_map (&pk, nopt);
    for (size_t o = 0; o < nf_jobopts_count; o++)
        if (a->values[o]) {
            if (nf_jobopts[o].is_int)
                nf_pk_kv_int (&pk, nf_jobopts[o].key, strtoll (a->values[o], NULL, 10));
            else
                nf_pk_kv_str (&pk, nf_jobopts[o].key, a->values[o]);
        }
    nf_msg_t *reply = NULL;
    int rc = s_request (ctx, "nf.submit", &body, &reply, false);
    if (rc == EXIT_OK && !nf_mp_get_int (nf_msg_root (reply), "job_id", id))
        rc = EXIT_REFUSED;
    nf_msg_destroy (&reply);
    nf_buf_free (&body);
    return rc;
}

static char *
s_trim (char *s)
{
    while (isspace ((unsigned char) *s))
        s++;
    size_t n = strlen (s);
    while (n && isspace ((unsigned char) s[n - 1]))
        s[--n] = 0;
    return s;
}

/* File-safe name for a niche: lower-case letters, digits and '-'. */
static void
s_slug (const char *niche, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = niche; *p && n + 1 < cap && n < 40; p++) {
        unsigned char c = (unsigned char) *p;
        if (isalnum (c) && c < 0x80)
            out[n++] = (char) tolower (c);
        else if (n && out[n - 1] != '-')
            out[n++] = '-';
    }
    while (n && out[n - 1] == '-')
        n--;
    if (!n)
        n = (size_t) snprintf (out, cap, "niche");
    out[n] = 0;
}

static int
s_cmd_submit (s_ctx_t *ctx, s_submit_args_t *a, const char *niche)
{
    s_job_t *jobs = NULL;
    size_t n = 0;
    int rc = EXIT_OK;
    if (a->file) {
        FILE *f = strcmp (a->file, "-") == 0 ? stdin : fopen (a->file, "r");
        if (!f) {
            fprintf (stderr, "nf-submit: cannot read %s: %s\n", a->file, strerror (errno));
            return EXIT_USAGE;
        }
        char line[2048];
        int lineno = 0;
        while (fgets (line, sizeof line, f)) {
            lineno++;
            char *hash = strchr (line, '#');
            if (hash)
                *hash = 0;
            char *bar = strchr (line, '|');
            if (bar)
                *bar = 0;
            char *nic = s_trim (line), *sub = bar ? s_trim (bar + 1) : NULL;
            if (!*nic) {
                if (sub && *sub)
                    fprintf (stderr, "nf-submit: %s:%d: a sub-niche without a niche; skipped\n",
                             a->file, lineno);
                continue;
            }
            int64_t id = 0;
            int r = s_submit_one (ctx, a, nic, sub && *sub ? sub : a->sub, &id);
            if (r != EXIT_OK) {
                fprintf (stderr, "nf-submit: %s:%d: '%s' not submitted\n", a->file, lineno, nic);
                if (r > rc)
                    rc = r;
                if (r == EXIT_UNREACHABLE)
                    break;
                continue;
            }
            printf ("%lld\t%s\n", (long long) id, nic);
            s_job_t *grown = realloc (jobs, (n + 1) * sizeof *jobs);
            if (!grown)
                abort (); /* the one out-of-memory policy (nf_util.h) */
            jobs = grown;
            memset (&jobs[n], 0, sizeof jobs[n]);
            jobs[n].id = id;
            jobs[n].label = strdup (nic);
            if (a->out) {
                char slug[64], path[4096];
                s_slug (nic, slug, sizeof slug);
                snprintf (path, sizeof path, "%s/%s-%lld", a->out, slug, (long long) id);
                jobs[n].out = strdup (path);
                jobs[n].pick_ext = true;
            }
            n++;
        }
        if (f != stdin)
            fclose (f);
        if (n == 0 && rc == EXIT_OK) {
            fprintf (stderr, "nf-submit: %s holds no niche\n", a->file);
            rc = EXIT_USAGE;
        }
    }
    else {
        int64_t id = 0;
        rc = s_submit_one (ctx, a, niche, a->sub, &id);
        if (rc == EXIT_OK) {
            printf ("%lld\n", (long long) id);
            jobs = calloc (1, sizeof *jobs);
            jobs[0].id = id;
            jobs[0].label = strdup (niche);
            jobs[0].out = a->out ? strdup (a->out) : NULL;
            n = 1;
        }
    }
    fflush (stdout);
    if (a->wait && n) {
        if (a->file && a->out && mkdir (a->out, 0755) != 0 && errno != EEXIST) {
            fprintf (stderr, "nf-submit: cannot create %s: %s\n", a->out, strerror (errno));
            rc = EXIT_USAGE;
        }
        else {
            int w = s_wait (ctx, jobs, n);
            if (w > rc)
                rc = w;
        }
    }
    for (size_t i = 0; i < n; i++) {
        free (jobs[i].label);
        free (jobs[i].out);
    }
    free (jobs);
    return rc;
}

/* ---- status and list ----------------------------------------------------------- */

static void
s_print_json (const json_t *j)
{
    char *s = json_dumps (j, JSON_COMPACT | JSON_ENSURE_ASCII);
    printf ("%s\n", s ? s : "null");
    free (s);
}

static int
s_cmd_status (s_ctx_t *ctx, int64_t job)
{
    nf_msg_t *reply = NULL;
    int rc = s_job_request (ctx, "nf.status", job, &reply, false);
    if (rc == EXIT_OK) {
        json_t *j = s_reply_json (reply, "job"), *counts = s_reply_json (reply, "counts");
        json_t *rejected = s_reply_json (reply, "rejected"),
               *exports = s_reply_json (reply, "exports"),
               *versions = s_reply_json (reply, "export_versions");
        if (ctx->json) {
            json_t *all =
                json_pack ("{s:O, s:O, s:O, s:O, s:O*}", "job", j, "counts", counts, "rejected",
                           rejected, "exports", exports, "export_versions", versions);
            s_print_json (all);
            json_decref (all);
        }
        else {
            s_job_t one = {.id = job, .job = j, .counts = counts};
            nf_buf_t b;
            nf_buf_init (&b);
            double f;
            s_render (&one, &b, &f);
            fputs (b.data, stdout);
            nf_buf_free (&b);
            const char *reason = json_string_value (json_object_get (j, "reason"));
            if (reason)
                printf ("  reason: %s\n", reason);
            const char *k;
            json_t *v;
            json_object_foreach (rejected, k, v)
            {
                printf ("  rejected %s: %lld\n", k, (long long) json_integer_value (v));
            }
            printf ("  usage: %lld search calls, %lld quota units (%lld of them for channel "
                    "baselines), %lld HTTP requests, %lld LLM tokens\n",
                    (long long) json_integer_value (json_object_get (j, "search_calls")),
                    (long long) json_integer_value (json_object_get (j, "quota_units")),
                    (long long) json_integer_value (json_object_get (j, "baseline_units")),
                    (long long) json_integer_value (json_object_get (j, "http_requests")),
                    (long long) json_integer_value (json_object_get (j, "tokens")));
            if (json_array_size (exports)) {
                printf ("  exports:");
                size_t i;
                json_array_foreach (exports, i, v)
                {
                    printf (" %s", json_string_value (v));
                }
                json_int_t newest = json_integer_value (json_object_get (
                    json_array_get (versions, json_array_size (versions) - 1), "version"));
                if (newest > 1)
                    printf ("  (version %lld; earlier: nf-submit export %lld -o FILE "
                            "--export-version N)\n",
                            (long long) newest, (long long) job);
                else
                    printf ("  (nf-submit export %lld -o FILE)\n", (long long) job);
            }
        }
        json_decref (j);
        json_decref (counts);
        json_decref (rejected);
        json_decref (exports);
        json_decref (versions);
    }
    nf_msg_destroy (&reply);
    return rc;
}

static const char *const s_priorities[] = {"high", "standard", "bulk", "background"};

static int
s_cmd_list (s_ctx_t *ctx, int64_t limit)
{
    nf_buf_t body;
    nf_buf_init (&body);
    nf_client_request_int (&body, "limit", limit);
    nf_msg_t *reply = NULL;
    int rc = s_request (ctx, "nf.list", &body, &reply, false);
    nf_buf_free (&body);
    if (rc == EXIT_OK) {
        json_t *jobs = s_reply_json (reply, "jobs");
        if (ctx->json)
            s_print_json (jobs);
        else {
            printf ("%6s  %-10s  %-10s  %-10s  %-19s  %s\n", "JOB", "STATUS", "PHASE", "PRIORITY",
                    "CREATED", "NICHE");
            size_t i;
            json_t *j;
            json_array_foreach (jobs, i, j)
            {
                json_int_t p = json_integer_value (json_object_get (j, "priority"));
                const char *created = json_string_value (json_object_get (j, "created_at"));
                const char *sub = json_string_value (json_object_get (j, "sub_niche"));
                printf ("%6lld  %-10s  %-10s  %-10s  %-19.19s  %s%s%s\n",
                        (long long) json_integer_value (json_object_get (j, "id")),
                        json_string_value (json_object_get (j, "status")),
                        json_string_value (json_object_get (j, "phase")),
                        p >= 0 && p < 4 ? s_priorities[p] : "?", created ? created : "",
                        json_string_value (json_object_get (j, "niche")), sub && *sub ? " | " : "",
                        sub && *sub ? sub : "");
            }
        }
        json_decref (jobs);
    }
    nf_msg_destroy (&reply);
    return rc;
}

/* ---- main ------------------------------------------------------------------------ */

/* "nf-submit: A B C" and the usage, for bad arguments. */
static int
s_usage_error (const char *a, const char *b, const char *c)
{
    fprintf (stderr, "nf-submit: %s%s%s\n%s", a, b, c, s_usage);
    return EXIT_USAGE;
}

/* The flags that take a value, beside the job options. */
typedef struct {
    const char *format;  /* export --format */
    const char *version; /* export --export-version N */
    const char *timeout; /* --timeout S */
    const char *limit;   /* --limit N */
    const char *job;     /* the JOB argument */
} s_args_t;

/* Where the value of flag A goes for command CMD, or NULL when CMD has no
   such flag. */
static const char **
s_flag_slot (const char *a, const char *cmd, bool is_submit, s_submit_args_t *sa, s_args_t *args)
{
    bool waits = is_submit || !strcmp (cmd, "resume") || !strcmp (cmd, "wait");
    if ((!strcmp (a, "-o") || !strcmp (a, "--output")) && (waits || !strcmp (cmd, "export")))
        return &sa->out;
    if (!strcmp (a, "--timeout") && waits)
        return &args->timeout;
    if (!strcmp (a, "--limit") && (!strcmp (cmd, "list") || !strcmp (cmd, "status")))
        return &args->limit;
    if (!strcmp (a, "--format") && !strcmp (cmd, "export"))
        return &args->format;
    if (!strcmp (a, "--export-version") && !strcmp (cmd, "export"))
        return &args->version;
    if (!is_submit)
        return NULL;
    if (!strcmp (a, "--sub-niche"))
        return &sa->sub;
    if (!strcmp (a, "--priority"))
        return &sa->priority;
    if (!strcmp (a, "--file"))
        return &sa->file;
    const nf_jobopt_t *o = nf_jobopt_by_flag (a);
    return o ? &sa->values[o - nf_jobopts] : NULL;
}

/* The job options as the broker checks them (nf_jobopts), so a bad value is
   named before anything is sent. EXIT_OK or EXIT_USAGE. */
static int
s_check_options (const s_submit_args_t *sa)
{
    for (size_t o = 0; o < nf_jobopts_count; o++) {
        const nf_jobopt_t *def = &nf_jobopts[o];
        const char *v = sa->values[o];
        if (!v)
            continue;
        bool ok;
        if (def->is_int) {
            char *end = NULL;
            long long x = strtoll (v, &end, 10);
            if (!*v || *end) {
                fprintf (stderr, "nf-submit: %s: '%s' is not a whole number\n%s", def->flag, v,
                         s_usage);
                return EXIT_USAGE;
            }
            ok = x >= def->min && x <= def->max;
        }
        else
            ok = nf_jobopt_str_ok (def, v, strlen (v));
        if (!ok) {
            fprintf (stderr, "nf-submit: %s: '%s' must be %s\n", def->flag, v, def->want);
            return EXIT_USAGE;
        }
    }
    if (sa->priority && nf_priority_parse (sa->priority) < 0) {
        fprintf (stderr, "nf-submit: --priority: '%s' must be high, standard, bulk or background\n",
                 sa->priority);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* A command line, parsed. */
typedef struct {
    const char *cmd;    /* the command, or the niche (or --file) for a submission */
    bool is_submit;     /* a submission, not one of the job commands */
    s_args_t args;      /* the job commands' flags */
    s_submit_args_t sa; /* the submission's options */
    int64_t limit;      /* list --limit */
    int64_t version;    /* export --export-version; 0 the newest */
    int64_t job;        /* the JOB argument */
} s_cmdline_t;

/* Every flag after the command (or the niche), checked here once. */
static int
s_parse_flags (nf_config_t *config, s_cmdline_t *cl, s_ctx_t *ctx)
{
    const char *cmd = cl->cmd;
    int nargs = nf_config_argc (config);
    int first = cl->is_submit && strcmp (cmd, "--file") != 0 ? 1 : (cl->is_submit ? 0 : 1);
    int rc = EXIT_OK;
    for (int i = first; rc == EXIT_OK && i < nargs; i++) {
        const char *a = nf_config_arg (config, i);
        const char *v = i + 1 < nargs ? nf_config_arg (config, i + 1) : NULL;
        if (strcmp (a, "--wait") == 0 && (cl->is_submit || !strcmp (cmd, "resume")))
            cl->sa.wait = true;
        else if (strcmp (a, "--translate") == 0 && cl->is_submit) /* a switch: translate 1 */
            cl->sa.values[nf_jobopt_by_flag (a) - nf_jobopts] = "1";
        else if (strcmp (a, "--json") == 0 && (!strcmp (cmd, "status") || !strcmp (cmd, "list")))
            ctx->json = true;
        else {
            const char **slot = s_flag_slot (a, cmd, cl->is_submit, &cl->sa, &cl->args);
            if (!slot && a[0] == '-' && a[1])
                rc = s_usage_error ("unknown option '", a, "'");
            else if (!slot && !cl->is_submit && !cl->args.job)
                cl->args.job = a;
            else if (!slot)
                rc = s_usage_error ("unexpected argument '", a, "'");
            else if (!v)
                rc = s_usage_error (a, " needs a value", "");
            else
                *slot = v, i++;
        }
    }
    return rc;
}

/* The values of the flags, and what each command needs. */
static int
s_check_args (s_cmdline_t *cl, s_ctx_t *ctx)
{
    const char *cmd = cl->cmd;
    const s_args_t *args = &cl->args;
    if (cl->is_submit && cmd[0] == '-' && strcmp (cmd, "--file") != 0)
        return s_usage_error ("unknown option '", cmd, "'");
    int rc = cl->is_submit ? s_check_options (&cl->sa) : EXIT_OK;
    if (rc != EXIT_OK)
        return rc;
    char *end = NULL;
    if (args->timeout
        && ((ctx->timeout_s = strtod (args->timeout, &end)) < 0 || end == args->timeout || *end))
        return s_usage_error ("--timeout: '", args->timeout, "' is not a number of seconds");
    if (args->limit
        && ((cl->limit = strtoll (args->limit, &end, 10)) < 1 || cl->limit > 1000 || *end))
        return s_usage_error ("--limit: '", args->limit, "' is not a whole number from 1 to 1000");
    if (args->version
        && ((cl->version = strtoll (args->version, &end, 10)) < 1 || cl->version > INT32_MAX
            || *end))
        return s_usage_error ("--export-version: '", args->version,
                              "' is not an export version (1, 2, ...)");
    bool needs_job = !cl->is_submit && strcmp (cmd, "list") != 0 && strcmp (cmd, "status") != 0;
    if (needs_job && !args->job)
        return s_usage_error (cmd, " needs a JOB", "");
    if (args->job && s_parse_job (args->job, &cl->job) != 0)
        return EXIT_USAGE;
    if (strcmp (cmd, "export") == 0 && !cl->sa.out)
        return s_usage_error (cmd, " needs -o FILE", "");
    return EXIT_OK;
}

/* CURVE keys and the client socket. */
static int
s_connect (nf_config_t *config, s_ctx_t *ctx)
{
    char err[512];
    if (nf_curve_new (config, NF_PROG_CLIENT, &ctx->curve, err, sizeof err) != 0) {
        fprintf (stderr, "nf-submit: %s\n", err);
        return EXIT_USAGE;
    }
    ctx->client = nf_client_new (nf_config_str (config, NF_CFG_BROKER_CLIENTS),
                                 nf_config_int (config, NF_CFG_TIMEOUT_MS),
                                 (size_t) nf_config_int (config, NF_CFG_MAX_FRAME), ctx->curve);
    if (!ctx->client) {
        fprintf (stderr, "nf-submit: cannot create a client socket\n");
        return EXIT_UNREACHABLE;
    }
    return EXIT_OK;
}

/* resume JOB [--wait] and wait JOB. */
static int
s_cmd_resume_wait (s_ctx_t *ctx, const s_cmdline_t *cl)
{
    int rc = EXIT_OK;
    bool resume = strcmp (cl->cmd, "resume") == 0;
    if (resume) {
        nf_msg_t *reply = NULL;
        rc = s_job_request (ctx, "nf.resume", cl->job, &reply, false);
        if (rc == EXIT_OK)
            printf ("job %lld: resumed (pending)\n", (long long) cl->job);
        nf_msg_destroy (&reply);
    }
    if (rc == EXIT_OK && (cl->sa.wait || !resume)) {
        s_job_t one = {.id = cl->job, .out = (char *) cl->sa.out}; /* named by its niche */
        rc = s_wait (ctx, &one, 1);
    }
    return rc;
}

/* purge JOB: what went. */
static int
s_cmd_purge (s_ctx_t *ctx, const s_cmdline_t *cl)
{
    nf_msg_t *reply = NULL;
    int rc = s_job_request (ctx, "nf.purge", cl->job, &reply, false);
    if (rc == EXIT_OK) {
        int64_t n[4] = {0, 0, 0, 0};
        const char *keys[] = {"videos", "exports", "history", "logs"};
        for (int k = 0; k < 4; k++)
            nf_mp_get_int (nf_msg_root (reply), keys[k], &n[k]);
        printf ("job %lld: purged (%lld videos, %lld export files, %lld history rows, %lld log "
                "lines)\n",
                (long long) cl->job, (long long) n[0], (long long) n[1], (long long) n[2],
                (long long) n[3]);
    }
    nf_msg_destroy (&reply);
    return rc;
}

/* cancel JOB, retry JOB: the broker's answer is the job's new status. */
static int
s_cmd_simple (s_ctx_t *ctx, const s_cmdline_t *cl)
{
    char service[16];
    snprintf (service, sizeof service, "nf.%s", cl->cmd);
    nf_msg_t *reply = NULL;
    int rc = s_job_request (ctx, service, cl->job, &reply, false);
    if (rc == EXIT_OK) {
        char *status = nf_mp_dup_str (nf_msg_root (reply), "status");
        printf ("job %lld: %s\n", (long long) cl->job, status ? status : "?");
        free (status);
    }
    nf_msg_destroy (&reply);
    return rc;
}

static int
s_run (s_ctx_t *ctx, s_cmdline_t *cl)
{
    const char *cmd = cl->cmd;
    if (cl->is_submit)
        return s_cmd_submit (ctx, &cl->sa, cmd);
    if (strcmp (cmd, "status") == 0)
        return cl->job ? s_cmd_status (ctx, cl->job) : s_cmd_list (ctx, cl->limit);
    if (strcmp (cmd, "list") == 0)
        return s_cmd_list (ctx, cl->limit);
    if (strcmp (cmd, "export") == 0) {
        const char *fmt = NULL;
        char path[4096];
        int rc = s_export_target (cl->sa.out, cl->args.format, &fmt, path, sizeof path);
        return rc == EXIT_OK ? s_export (ctx, cl->job, fmt, cl->version, path) : rc;
    }
    if (strcmp (cmd, "wait") == 0 || strcmp (cmd, "resume") == 0)
        return s_cmd_resume_wait (ctx, cl);
    if (strcmp (cmd, "purge") == 0)
        return s_cmd_purge (ctx, cl);
    return s_cmd_simple (ctx, cl);
}

/* --help (stdout, 0) or no arguments (stderr, 2). */
static int
s_help (nf_config_t *config)
{
    FILE *to = nf_config_wants_help (config) ? stdout : stderr;
    fputs (s_usage, to);
    nf_job_statuses_print_help (to);
    nf_config_print_help (config, to);
    return nf_config_wants_help (config) ? EXIT_OK : EXIT_USAGE;
}

int
main (int argc, char **argv)
{
    nf_config_t *config = nf_config_new ("nf-submit", NF_PROG_CLIENT);
    if (!config || nf_config_load (config, argc, argv) != 0) {
        nf_config_destroy (&config); /* said why on stderr */
        return EXIT_USAGE;
    }
    int rc = EXIT_OK;
    if (nf_config_wants_version (config))
        printf ("nf-submit %s\n", NF_VERSION);
    else if (nf_config_wants_help (config) || nf_config_argc (config) == 0)
        rc = s_help (config);
    else {
        nf_config_apply_logging (config);
        s_ctx_t ctx = {.pub = nf_config_str (config, NF_CFG_BROKER_PUB), .tty = isatty (2) != 0};
        s_cmdline_t cl = {.cmd = nf_config_arg (config, 0), .limit = 20};
        static const char *const commands[] = {"status", "list",  "cancel", "retry",
                                               "resume", "purge", "wait",   "export"};
        cl.is_submit = true;
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            cl.is_submit = cl.is_submit && strcmp (cl.cmd, commands[i]) != 0;
        rc = s_parse_flags (config, &cl, &ctx);
        if (rc == EXIT_OK)
            rc = s_check_args (&cl, &ctx);
        if (rc == EXIT_OK)
            rc = s_connect (config, &ctx);
        if (rc == EXIT_OK)
            rc = s_run (&ctx, &cl);
        nf_client_destroy (&ctx.client);
        nf_curve_destroy (&ctx.curve);
    }
    nf_config_destroy (&config);
    return rc;
}
