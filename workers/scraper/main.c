/*  nf-scraper: the `discover` (per job, creates DISCOVERED videos) and
    `scrape` (DISCOVERED to RAW) stages. One process serves one of them:

        nf-scraper discover [settings]
        nf-scraper scrape   [settings]      (the default)

    A thin main around nf_scrape: task maps become jansson values, results
    go back as msgpack. */
#include "nf_log.h"
#include "nf_scrape.h"
#include "nf_worker.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *stage;
    nf_http_t *http;
    nf_http_t *lanes[NF_SCRAPE_LANES_MAX]; /* discover: the channels' uploads at once */
    int nlanes;
    nf_template_t *watch;
    nf_clients_t *clients;
    nf_scraper_t scraper;
} s_app_t;

static int
s_init (nf_config_t *config, void *arg)
{
    s_app_t *app = arg;
    nf_http_opts_t o = {0};
    o.timeout_ms = (long) nf_config_int (config, NF_CFG_HTTP_TIMEOUT_MS);
    o.max_bytes = (size_t) nf_config_int (config, NF_CFG_HTTP_MAX_BYTES);
    o.retries = (int) nf_config_int (config, NF_CFG_HTTP_RETRIES);
    o.burst = (int) nf_config_int (config, NF_CFG_HTTP_BURST);
    o.max_wait_ms = (long) nf_config_int (config, NF_CFG_HTTP_MAX_WAIT_MS);
    o.backoff_base_ms = 500;
    o.proxies = nf_config_str (config, NF_CFG_PROXIES);
    o.user_agents = nf_config_str (config, NF_CFG_USER_AGENTS);
    o.cache_dir = nf_config_str (config, NF_CFG_CACHE_DIR);
    o.cache_ttl_s = (long) nf_config_int (config, NF_CFG_CACHE_TTL_S);
    o.cache_max_bytes = nf_config_int (config, NF_CFG_CACHE_MAX_MB) * 1024 * 1024;
    const char *rate = nf_config_str (config, NF_CFG_HTTP_RATE);
    char *end = NULL;
    o.rate = strtod (rate, &end);
    if (end == rate || *end || o.rate < 0) {
        fprintf (stderr, "nf-scraper: NF_HTTP_RATE: '%s' is not a number >= 0\n", rate);
        return -1;
    }
    if (nf_http_parse_range (nf_config_str (config, NF_CFG_HTTP_DELAY_MS), &o.delay_min_ms,
                             &o.delay_max_ms)
        != 0) {
        fprintf (stderr, "nf-scraper: NF_HTTP_DELAY_MS: '%s' is not N or MIN-MAX\n",
                 nf_config_str (config, NF_CFG_HTTP_DELAY_MS));
        return -1;
    }
    char err[512];
    app->http = nf_http_new (&o, err, sizeof err);
    if (!app->http) {
        fprintf (stderr, "nf-scraper: %s\n", err);
        return -1;
    }
    /* Discovery's lanes: clients of their own for the channels' uploads,
       Data API calls all, so no politeness pause to share among them. */
    int nlanes = strcmp (app->stage, "discover") == 0
                     ? (int) nf_config_int (config, NF_CFG_BASELINE_LANES)
                     : 1;
    for (app->nlanes = 0; nlanes > 1 && app->nlanes < nlanes; app->nlanes++)
        if (!(app->lanes[app->nlanes] = nf_http_new (&o, err, sizeof err))) {
            fprintf (stderr, "nf-scraper: %s\n", err);
            return -1;
        }
    const char *dir = nf_config_str (config, NF_CFG_TEMPLATE_DIR);
    app->watch = nf_scrape_template (dir, "youtube_watch", err, sizeof err);
    if (!app->watch) {
        fprintf (stderr, "nf-scraper: %s\n", err);
        return -1;
    }
    app->clients = nf_scrape_clients (dir, err, sizeof err);
    if (!app->clients) {
        fprintf (stderr, "nf-scraper: %s\n", err);
        return -1;
    }
    app->scraper = (nf_scraper_t){
        .api_url = nf_config_str (config, NF_CFG_YOUTUBE_API_URL),
        .web_url = nf_config_str (config, NF_CFG_YOUTUBE_WEB_URL),
        .api_key = nf_config_str (config, NF_CFG_YOUTUBE_API_KEY),
        .template_dir = dir,
        .http = app->http,
        .watch = app->watch,
        .clients = app->clients,
        .baseline_uploads = (int) nf_config_int (config, NF_CFG_BASELINE_UPLOADS),
        .lanes = app->lanes,
        .nlanes = app->nlanes,
    };
    return 0;
}

/* A msgpack map of the task as a jansson value (NULL when absent). */
static json_t *
s_json (const msgpack_object *o)
{
    if (!o)
        return NULL;
    nf_buf_t b;
    nf_buf_init (&b);
    char err[128];
    json_t *j =
        nf_mp_to_json (o, &b, err, sizeof err) == 0
            ? json_loadb (b.data ? b.data : "null", b.len ? b.len : 4, JSON_DECODE_ANY, NULL)
            : NULL;
    nf_buf_free (&b);
    return j;
}

static void
s_usage (nf_result_t *result, const nf_usage_t *u)
{
    msgpack_packer pk;
    nf_result_usage_packer (result, &pk);
    msgpack_pack_map (&pk, 4);
    nf_pk_kv_int (&pk, "quota_units", u->quota_units);
    nf_pk_kv_int (&pk, "search_calls", u->search_calls);
    nf_pk_kv_int (&pk, "http_requests", u->http_requests);
    nf_pk_kv_int (&pk, "baseline_units", u->baseline_units);
}

static void
s_stage (const nf_task_t *task, nf_result_t *result, void *arg)
{
    s_app_t *app = arg;
    json_t *job = s_json (task->job), *input = s_json (task->input);
    nf_usage_t usage = {0, 0, 0, 0};
    nf_outcome_t out;
    msgpack_packer pk;
    if (strcmp (app->stage, "discover") == 0) {
        json_t *videos = json_array (), *channels = json_array ();
        nf_discover (&app->scraper, job, json_object_get (input, "known_ids"),
                     json_object_get (input, "fresh_channels"), videos, channels, &usage, &out);
        if (out.ok) {
            nf_result_output_packer (result, &pk);
            msgpack_pack_map (&pk, out.note[0] ? 3 : 2);
            nf_pk_str (&pk, "videos");
            nf_pk_json (&pk, videos);
            nf_pk_str (&pk, "channels");
            nf_pk_json (&pk, channels);
            if (out.note[0])
                nf_pk_kv_str (&pk, "note", out.note);
            nf_info ("job %lld: discovered %zu videos, %zu channels (%lld requests, %lld "
                     "search calls, %lld quota units, %lld of them for channel baselines)%s%s",
                     (long long) task->job_id, json_array_size (videos), json_array_size (channels),
                     (long long) usage.http_requests, (long long) usage.search_calls,
                     (long long) usage.quota_units, (long long) usage.baseline_units,
                     out.note[0] ? ": " : "", out.note);
        }
        json_decref (videos);
        json_decref (channels);
    }
    else {
        json_t *meta = json_object ();
        nf_buf_t transcript;
        nf_buf_init (&transcript);
        nf_scrape (&app->scraper, task->video_id, json_object_get (input, "meta"), job, meta,
                   &transcript, &usage, &out);
        if (out.ok) {
            nf_result_output_packer (result, &pk);
            msgpack_pack_map (&pk, transcript.len > 0 ? 2 : 1);
            nf_pk_str (&pk, "meta");
            nf_pk_json (&pk, meta);
            if (transcript.len > 0) {
                nf_pk_str (&pk, "transcript");
                nf_pk_strn (&pk, transcript.data, transcript.len);
            }
        }
        nf_buf_free (&transcript);
        json_decref (meta);
    }
    if (out.rejected) {
        nf_info ("%s: rejected: %s", task->video_id ? task->video_id : "?", out.error);
        nf_result_reject (result, "%s", out.reason);
    }
    else if (!out.ok)
        nf_result_error (result, out.retryable, "%s", out.error);
    s_usage (result, &usage);
    json_decref (job);
    json_decref (input);
}

int
main (int argc, char **argv)
{
    s_app_t app = {.stage = "scrape"};
    if (argc > 1 && (strcmp (argv[1], "discover") == 0 || strcmp (argv[1], "scrape") == 0)) {
        app.stage = argv[1];
        argv[1] = argv[0]; /* drop the stage word */
        argc--;
        argv++;
    }
    int rc = nf_worker_main (argc, argv, "nf-scraper", app.stage, s_init, s_stage, &app);
    nf_template_destroy (&app.watch);
    nf_clients_destroy (&app.clients);
    nf_http_destroy (&app.http);
    for (int i = 0; i < app.nlanes; i++)
        nf_http_destroy (&app.lanes[i]);
    return rc;
}
