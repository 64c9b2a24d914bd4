/*  nf-monitor: the operators' view of a running nicheflow. It subscribes to
    the broker's PUB socket (every job's events and the stats of each
    second) and re-reads nf.list / nf.status each second as a client, so a
    lost event (PUB is lossy) or a broker restart never leaves it wrong;
    ZeroMQ reconnects the subscription by itself.

      nf-monitor              full-screen dashboard (ncurses): jobs with
                              state and counts, services with workers and
                              throughput, failures and retries, and a live
                              error feed grouped by class. Keys: q quit,
                              p pause, j next job filter, a all jobs.
      nf-monitor --json       every event as a JSON line (for log pipelines)
      nf-monitor --once       a snapshot (text, or JSON with --json), then exit
      nf-monitor --job N      only job N

    Exit codes: 0, 2 bad arguments, 3 broker unreachable (--once). */
#include "nf_client.h"
#include "nf_config.h"
#include "nf_feed.h"
#include "nf_log.h"
#include "nf_util.h"
#include "nf_version.h"

#include <curses.h>
#include <czmq.h>
#include <jansson.h>
#include <locale.h>

static const char *const s_states[] = {"DISCOVERED", "RAW",      "CLEANED",  "VALIDATED", "OUTLIER",
                                       "READY",      "EXPORTED", "REJECTED", "FAILED"};
#define NSTATES (sizeof s_states / sizeof s_states[0])

typedef struct {
    nf_client_t *client;
    zsock_t *sub;
    nf_curve_t *curve; /* CURVE keys, or NULL */
    int64_t only_job;  /* --job, or 0 */
    json_t *jobs;      /* last nf.list, each with "counts" for the shown ones */
    bool reachable;    /* the last request was answered */
    nf_feed_t feed;    /* failures, retries, their classes, the last two stats */
} s_mon_t;

/* ---- data ------------------------------------------------------------------- */

static json_t *
s_reply_json (nf_msg_t *reply, const char *key)
{
    return nf_mp_get_json (nf_msg_root (reply), key);
}

static nf_msg_t *
s_call (s_mon_t *m, const char *service, int64_t job)
{
    nf_buf_t body;
    nf_buf_init (&body);
    nf_client_request_int (&body, job ? "job_id" : "limit", job ? job : 12);
    nf_msg_t *reply = NULL;
    char err[256];
    int rc = nf_client_request (m->client, service, body.data, body.len, &reply, err, sizeof err);
    nf_buf_free (&body);
    m->reachable = rc == 0;
    return rc == 0 ? reply : NULL;
}

/* Re-read the recent jobs (nf.list gives each one's counts), or the one job. */
static void
s_refresh (s_mon_t *m)
{
    json_t *jobs = NULL;
    if (m->only_job)
        jobs = json_array ();
    else {
        nf_msg_t *reply = s_call (m, "nf.list", 0);
        if (!reply)
            return;
        jobs = s_reply_json (reply, "jobs");
        nf_msg_destroy (&reply);
        if (!json_is_array (jobs)) {
            json_decref (jobs);
            return;
        }
    }
    if (m->only_job) {
        nf_msg_t *reply = s_call (m, "nf.status", m->only_job);
        if (!reply) {
            json_decref (jobs);
            return;
        }
        json_t *j = s_reply_json (reply, "job");
        if (j) {
            json_object_set_new (j, "counts", s_reply_json (reply, "counts"));
            json_array_append_new (jobs, j);
        }
        nf_msg_destroy (&reply);
    }
    json_decref (m->jobs);
    m->jobs = jobs;
}

static void
s_on_event (s_mon_t *m, const char *topic, json_t *ev, int64_t now)
{
    if (strcmp (topic, "nf.stats.") == 0) {
        nf_feed_stats (&m->feed, ev, now);
        return;
    }
    nf_feed_event (&m->feed, ev, now);
}

/* Read what the SUB socket has; --json prints each event as a line. */
static void
s_drain (s_mon_t *m, bool print)
{
    while (zsock_events (m->sub) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (m->sub);
        char *topic = NULL;
        json_t *ev = nf_event_decode (msg, 1 << 24, &topic);
        if (json_is_object (ev) && topic) {
            int64_t job = json_integer_value (json_object_get (ev, "job_id"));
            if (!m->only_job || job == m->only_job || strcmp (topic, "nf.stats.") == 0) {
                s_on_event (m, topic, ev, nf_clock_ms ());
                if (print) {
                    json_object_set_new (ev, "topic", json_string (topic));
                    char *line = json_dumps (ev, JSON_COMPACT | JSON_SORT_KEYS);
                    printf ("%s\n", line);
                    fflush (stdout);
                    free (line);
                }
            }
        }
        json_decref (ev);
        zstr_free (&topic);
        zmsg_destroy (&msg);
    }
}

static void
s_poll (s_mon_t *m, int ms, bool print)
{
    zmq_pollitem_t item = {zsock_resolve (m->sub), 0, ZMQ_POLLIN, 0};
    zmq_poll (&item, 1, ms);
    s_drain (m, print);
}

/* ---- text views ------------------------------------------------------------ */

static int64_t
s_count (const json_t *job, const char *state)
{
    return json_integer_value (json_object_get (json_object_get (job, "counts"), state));
}

/* The snapshot lines (for --once and for the screen). */
static void
s_lines (s_mon_t *m, nf_buf_t *b, int64_t now, bool live)
{
    nf_buf_printf (b, "JOBS%s\n", m->only_job ? " (filtered)" : "");
    nf_buf_printf (b, "%6s %-11s %-10s %-24s", "JOB", "STATUS", "PHASE", "NICHE");
    const char *abbr[] = {"DISC", "RAW", "CLEAN", "VALID", "OUTL", "READY", "EXPRT", "REJ", "FAIL"};
    for (size_t s = 0; s < NSTATES; s++)
        nf_buf_printf (b, " %6s", abbr[s]);
    nf_buf_puts (b, "\n");
    size_t i;
    json_t *j;
    json_array_foreach (m->jobs, i, j)
    {
        const char *niche = json_string_value (json_object_get (j, "niche"));
        nf_buf_printf (b, "%6lld %-11s %-10s %-24.24s",
                       (long long) json_integer_value (json_object_get (j, "id")),
                       json_string_value (json_object_get (j, "status")),
                       json_string_value (json_object_get (j, "phase")), niche ? niche : "");
        for (size_t s = 0; s < NSTATES; s++)
            nf_buf_printf (b, " %6lld", (long long) s_count (j, s_states[s]));
        nf_buf_puts (b, "\n");
    }
    nf_buf_printf (b, "\nSERVICES%s\n", m->feed.stats ? "" : " (no stats from the broker yet)");
    nf_buf_printf (b, "%-10s %7s %5s %7s %10s %9s %8s\n", "SERVICE", "WORKERS", "IDLE", "QUEUED",
                   "DISPATCHED", "REPLIES", "PER SEC");
    const json_t *svcs = json_object_get (m->feed.stats, "services");
    json_t *rates = nf_feed_rates (&m->feed);
    const char *name;
    json_t *sv;
    json_object_foreach ((json_t *) svcs, name, sv)
    {
        int64_t replies = json_integer_value (json_object_get (sv, "replies"));
        double rate = json_real_value (json_object_get (rates, name));
        nf_buf_printf (b, "%-10s %7lld %5lld %7lld %10lld %9lld %8.1f\n", name,
                       (long long) json_integer_value (json_object_get (sv, "workers")),
                       (long long) json_integer_value (json_object_get (sv, "idle")),
                       (long long) json_integer_value (json_object_get (sv, "queued")),
                       (long long) json_integer_value (json_object_get (sv, "dispatched")),
                       (long long) replies, rate);
    }
    json_decref (rates);
    if (m->feed.stats)
        nf_buf_printf (
            b, "database %s, dead workers %lld, fenced replies %lld, dropped %lld\n",
            json_is_true (json_object_get (m->feed.stats, "database")) ? "up" : "DOWN",
            (long long) json_integer_value (json_object_get (m->feed.stats, "dead_workers")),
            (long long) json_integer_value (json_object_get (m->feed.stats, "fenced")),
            (long long) json_integer_value (json_object_get (m->feed.stats, "dropped")));
    if (!live)
        return; /* a snapshot has seen no events: no feed to show */
    nf_buf_printf (b, "\nFAILURES %zu, RETRIES %zu in the last minute\n",
                   nf_feed_failures (&m->feed, now), nf_feed_retries (&m->feed, now));
    size_t which[8], counts[8];
    size_t shown = nf_feed_top (&m->feed, now, which, counts, 8);
    for (size_t k = 0; k < shown; k++)
        nf_buf_printf (b, "  %5zu in the last minute: %s\n", counts[k],
                       m->feed.classes[which[k]].text);
}

/* ---- screen ---------------------------------------------------------------- */

static void
s_screen (s_mon_t *m, const char *endpoint, bool paused, int64_t now)
{
    nf_buf_t b;
    nf_buf_init (&b);
    s_lines (m, &b, now, true);
    erase ();
    attron (A_BOLD);
    mvprintw (0, 0, "nf-monitor %s  broker %s  %s%s", NF_VERSION, endpoint,
              m->reachable ? "connected" : "UNREACHABLE, retrying",
              paused ? "  [PAUSED: p resumes]" : "");
    attroff (A_BOLD);
    mvprintw (1, 0, "q quit  p pause  j next job  a all jobs   stats %s",
              m->feed.stats_at ? (now - m->feed.stats_at < 3000 ? "live" : "stale") : "waiting");
    int row = 3;
    char *save = NULL;
    for (char *line = strtok_r (b.data, "\n", &save); line && row < LINES;
         line = strtok_r (NULL, "\n", &save)) {
        bool head = isupper ((unsigned char) line[0]);
        if (head)
            attron (A_BOLD);
        mvaddnstr (row++, 0, line, COLS - 1);
        if (head)
            attroff (A_BOLD);
    }
    refresh ();
    nf_buf_free (&b);
}

/* The job after the current filter among those listed (0 after the last). */
static int64_t
s_next_job (const s_mon_t *m)
{
    int64_t next = 0;
    size_t i;
    json_t *j;
    json_array_foreach (m->jobs, i, j)
    {
        int64_t id = json_integer_value (json_object_get (j, "id"));
        if ((m->only_job == 0 || id < m->only_job) && id > next)
            next = id;
    }
    return next;
}

static const char *s_usage =
    "Usage: nf-monitor [--json] [--once] [--job N]\n"
    "  (no flag: full-screen dashboard; keys q quit, p pause, j next job, a all)\n"
    "Exit codes: 0, 2 bad arguments, 3 broker unreachable (--once).\n\n";

/* --json, --once, --job N. 0, or 2 (said on stderr). */
static int
s_parse_args (nf_config_t *config, s_mon_t *m, bool *json, bool *once)
{
    for (int i = 0; i < nf_config_argc (config); i++) {
        const char *a = nf_config_arg (config, i);
        bool ok = true;
        if (strcmp (a, "--json") == 0)
            *json = true;
        else if (strcmp (a, "--once") == 0)
            *once = true;
        else if (strcmp (a, "--job") == 0 && i + 1 < nf_config_argc (config)) {
            char *end;
            m->only_job = strtoll (nf_config_arg (config, ++i), &end, 10);
            ok = !*end && m->only_job > 0;
        }
        else
            ok = false;
        if (!ok) {
            fprintf (stderr, "nf-monitor: unexpected argument '%s'\n%s", a, s_usage);
            return 2;
        }
    }
    return 0;
}

/* CURVE, the client socket and the subscription (the job's events, or
   every job's, and the stats). 0, or 2. */
static int
s_connect (nf_config_t *config, s_mon_t *m)
{
    char err[512];
    if (nf_curve_new (config, NF_PROG_CLIENT, &m->curve, err, sizeof err) != 0) {
        fprintf (stderr, "nf-monitor: %s\n", err);
        return 2;
    }
    int64_t timeout = nf_config_int (config, NF_CFG_TIMEOUT_MS);
    m->client = nf_client_new (nf_config_str (config, NF_CFG_BROKER_CLIENTS),
                               timeout < 2000 ? timeout : 2000,
                               (size_t) nf_config_int (config, NF_CFG_MAX_FRAME), m->curve);
    m->sub = zsock_new (ZMQ_SUB);
    nf_curve_client (m->curve, m->sub);
    zsock_connect (m->sub, "%s", nf_config_str (config, NF_CFG_BROKER_PUB));
    char topic[48] = "nf.job.";
    if (m->only_job)
        snprintf (topic, sizeof topic, "nf.job.%lld.", (long long) m->only_job);
    zsock_set_subscribe (m->sub, topic);
    zsock_set_subscribe (m->sub, "nf.stats.");
    return 0;
}

/* --once: one stats message (at most 2.5 s), then the jobs, printed once. */
static int
s_once (s_mon_t *m, const char *endpoint, bool json)
{
    int64_t until = nf_clock_ms () + 2500;
    while (!m->feed.stats && nf_clock_ms () < until && !zsys_interrupted)
        s_poll (m, 100, false);
    s_refresh (m);
    if (!m->reachable) {
        fprintf (stderr, "nf-monitor: the broker at %s does not answer\n", endpoint);
        return 3;
    }
    if (json) {
        json_t *snap = json_pack ("{s:O, s:O}", "jobs", m->jobs ? m->jobs : json_array (), "stats",
                                  m->feed.stats ? m->feed.stats : json_null ());
        char *text = json_dumps (snap, JSON_COMPACT | JSON_SORT_KEYS);
        printf ("%s\n", text);
        free (text);
        json_decref (snap);
    }
    else {
        nf_buf_t b;
        nf_buf_init (&b);
        s_lines (m, &b, nf_clock_ms (), false);
        fputs (b.data, stdout);
        nf_buf_free (&b);
    }
    return 0;
}

/* The full-screen dashboard, until q or a signal. */
static void
s_dashboard (s_mon_t *m, const char *endpoint)
{
    setlocale (LC_ALL, "");
    initscr ();
    cbreak ();
    noecho ();
    nodelay (stdscr, TRUE);
    keypad (stdscr, TRUE);
    curs_set (0);
    bool paused = false;
    int64_t next_refresh = 0;
    while (!zsys_interrupted) {
        s_poll (m, 200, false);
        int ch = getch ();
        if (ch == 'q' || ch == 'Q')
            break;
        if (ch == 'p' || ch == 'P')
            paused = !paused, next_refresh = 0;
        if (ch == 'j' || ch == 'a') {
            m->only_job = ch == 'a' ? 0 : s_next_job (m);
            json_decref (m->jobs);
            m->jobs = NULL;
            next_refresh = 0;
        }
        int64_t now = nf_clock_ms ();
        if (now >= next_refresh) {
            if (!paused)
                s_refresh (m);
            s_screen (m, endpoint, paused, now);
            next_refresh = now + 1000;
        }
    }
    endwin ();
}

int
main (int argc, char **argv)
{
    nf_config_t *config = nf_config_new ("nf-monitor", NF_PROG_CLIENT);
    if (!config || nf_config_load (config, argc, argv) != 0) {
        nf_config_destroy (&config); /* said why on stderr */
        return 2;
    }
    if (nf_config_wants_version (config) || nf_config_wants_help (config)) {
        if (nf_config_wants_version (config))
            printf ("nf-monitor %s\n", NF_VERSION);
        else {
            fputs (s_usage, stdout);
            nf_config_print_help (config, stdout);
        }
        nf_config_destroy (&config);
        return 0;
    }
    nf_config_apply_logging (config);
    bool json = false, once = false;
    s_mon_t m = {0};
    int rc = s_parse_args (config, &m, &json, &once);
    if (rc == 0)
        rc = s_connect (config, &m);
    const char *endpoint = nf_config_str (config, NF_CFG_BROKER_CLIENTS);
    if (rc == 0 && once)
        rc = s_once (&m, endpoint, json);
    else if (rc == 0 && json)
        while (!zsys_interrupted)
            s_poll (&m, 500, true);
    else if (rc == 0)
        s_dashboard (&m, endpoint);
    json_decref (m.jobs);
    nf_feed_clear (&m.feed);
    zsock_destroy (&m.sub);
    nf_client_destroy (&m.client);
    nf_curve_destroy (&m.curve);
    nf_config_destroy (&config);
    return rc;
}
