/*  nf-analyst: the `analyze` stage (per job). Reads the job's candidates
    with their channels and the channels' recent uploads (the input's
    "channels"), measures each against its baseline (nf_baseline), ranks
    them with nf_analyze and answers:
    the top N (job option top_n, default 10) become OUTLIER, the other
    candidates stay VALIDATED with their scores ("keep"), filtered videos
    are REJECTED with the filter's reason. Ages are measured from the job's
    creation time, so a re-run ranks the same way. */
#include "nf_analyze.h"
#include "nf_log.h"
#include "nf_worker.h"
#include "nf_youtube.h"

#include <jansson.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nf_analyze_opts_t analyze;
    nf_baseline_opts_t baseline;
} s_opts_t;

static int
s_init (nf_config_t *config, void *arg)
{
    s_opts_t *all = (s_opts_t *) arg;
    nf_analyze_opts_t *o = &all->analyze;
    all->baseline = (nf_baseline_opts_t){
        .max_uploads = (int) nf_config_int (config, NF_CFG_BASELINE_MAX),
        .min_uploads = (int) nf_config_int (config, NF_CFG_BASELINE_MIN),
        .maturity_days = (double) nf_config_int (config, NF_CFG_MATURITY_DAYS),
        .short_max_s = NF_YT_SHORT_MAX_S,
    };
    char err[256];
    if (nf_weights_parse (nf_config_str (config, NF_CFG_WEIGHTS), o->weights, err, sizeof err)
        != 0) {
        fprintf (stderr, "nf-analyst: NF_WEIGHTS: %s\n", err);
        return -1;
    }
    return 0;
}

/* Read one video map into C. */
static void
s_candidate (const msgpack_object *v, double reference, nf_candidate_t *c)
{
    memset (c, 0, sizeof *c);
    const msgpack_object *meta = nf_mp_get (v, "meta");
    const msgpack_object *ch = nf_mp_get (nf_mp_get (v, "channel"), "data");
    nf_mp_get_num (meta, "views", &c->views);
    c->has_likes = nf_mp_get_num (meta, "likes", &c->likes);
    c->has_comments = nf_mp_get_num (meta, "comments", &c->comments);
    const char *pub;
    size_t pub_len;
    double published;
    c->age_days = -1;
    if (nf_mp_get_str (meta, "published_at", &pub, &pub_len)
        && nf_time_parse (pub, pub_len, &published) == 0 && reference > 0)
        c->age_days = fmax (0.0, (reference - published) / 86400.0); /* clock skew: new */
    double duration = 0;
    bool is_short;
    if (nf_mp_get_bool (meta, "is_short", &is_short))
        c->is_short = is_short;
    else
        c->is_short = nf_mp_get_num (meta, "duration_s", &duration) && duration > 0
                      && duration <= NF_YT_SHORT_MAX_S;
    bool hidden = false;
    nf_mp_get_bool (ch, "hidden_subscribers", &hidden);
    c->has_subscribers = !hidden && nf_mp_get_num (ch, "subscribers", &c->subscribers);
    c->has_channel = nf_mp_get_num (ch, "view_count", &c->channel_views)
                     && nf_mp_get_num (ch, "video_count", &c->channel_videos);
}

/* The baseline of candidate C (its VIDEO map) from its channel's recent
   uploads in the input's "channels" map; ages from REFERENCE. */
static void
s_baseline (nf_candidate_t *c, const msgpack_object *video, const msgpack_object *channels,
            double reference, const nf_baseline_opts_t *o)
{
    const char *ch;
    size_t ch_len;
    const msgpack_object *recent = NULL;
    if (nf_mp_get_str (nf_mp_get (video, "channel"), "channel_id", &ch, &ch_len) && channels
        && channels->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < channels->via.map.size && !recent; i++) {
            const msgpack_object *k = &channels->via.map.ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == ch_len
                && memcmp (k->via.str.ptr, ch, ch_len) == 0)
                recent = nf_mp_get (&channels->via.map.ptr[i].val, "recent");
        }
    size_t n = recent && recent->type == MSGPACK_OBJECT_ARRAY ? recent->via.array.size : 0;
    nf_upload_t *u = calloc (n + 1, sizeof *u);
    char **ids = calloc (n + 1, sizeof *ids);
    if (!u || !ids)
        abort ();
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *x = &recent->via.array.ptr[i];
        ids[i] = nf_mp_dup_str (x, "video_id");
        u[i].video_id = ids[i];
        if (!nf_mp_get_num (x, "views", &u[i].views))
            u[i].views = -1; /* hidden */
        if (!nf_mp_get_num (x, "duration_s", &u[i].duration_s))
            u[i].duration_s = -1;
        const char *pub;
        size_t pub_len;
        double published;
        u[i].age_days = -1;
        if (nf_mp_get_str (x, "published_at", &pub, &pub_len)
            && nf_time_parse (pub, pub_len, &published) == 0 && reference > 0)
            u[i].age_days = (reference - published) / 86400.0;
    }
    nf_baseline (c, u, n, o);
    for (size_t i = 0; i < n; i++)
        free (ids[i]);
    free (ids);
    free (u);
}

/* The key phrases of each video (meta.key_phrases, the sanitizer's) that
   few of the job's other transcripts say: a phrase in more than a quarter
   of them (and more than two) is the niche's, not the video's. Up to
   DISTINCT_MAX of each video's, in its own order, packed as
   "key_phrases" by s_pack_phrases; DF counts the videos saying each. */
#define DISTINCT_MAX 5

static json_t *
s_phrase_df (const msgpack_object *videos)
{
    json_t *df = json_object ();
    for (uint32_t i = 0; videos && i < videos->via.array.size; i++) {
        const msgpack_object *kp =
            nf_mp_get (nf_mp_get (&videos->via.array.ptr[i], "meta"), "key_phrases");
        json_t *mine = json_object (); /* a phrase counts once per video */
        for (uint32_t k = 0; kp && kp->type == MSGPACK_OBJECT_ARRAY && k < kp->via.array.size;
             k++) {
            const msgpack_object *p = &kp->via.array.ptr[k];
            if (p->type != MSGPACK_OBJECT_STR || p->via.str.size == 0 || p->via.str.size > 80)
                continue;
            char key[96];
            snprintf (key, sizeof key, "%.*s", (int) p->via.str.size, p->via.str.ptr);
            if (json_object_get (mine, key))
                continue;
            json_object_set_new (mine, key, json_true ());
            json_int_t n = json_integer_value (json_object_get (df, key));
            json_object_set_new (df, key, json_integer (n + 1));
        }
        json_decref (mine);
    }
    return df;
}

static void
s_pack_phrases (msgpack_packer *pk, const msgpack_object *video, const json_t *df, size_t n)
{
    const msgpack_object *kp = nf_mp_get (nf_mp_get (video, "meta"), "key_phrases");
    json_int_t common = (json_int_t) (n / 4 > 2 ? n / 4 : 2);
    const char *keep[DISTINCT_MAX];
    char keys[DISTINCT_MAX][96];
    size_t m = 0;
    for (uint32_t k = 0;
         kp && kp->type == MSGPACK_OBJECT_ARRAY && k < kp->via.array.size && m < DISTINCT_MAX;
         k++) {
        const msgpack_object *p = &kp->via.array.ptr[k];
        if (p->type != MSGPACK_OBJECT_STR || p->via.str.size == 0 || p->via.str.size > 80)
            continue;
        snprintf (keys[m], sizeof keys[m], "%.*s", (int) p->via.str.size, p->via.str.ptr);
        if (json_integer_value (json_object_get (df, keys[m])) > common)
            continue; /* the niche's words */
        keep[m] = keys[m];
        m++;
    }
    nf_pk_str (pk, "key_phrases");
    msgpack_pack_array (pk, m);
    for (size_t i = 0; i < m; i++)
        nf_pk_str (pk, keep[i]);
}

static void
s_pack_num (msgpack_packer *pk, const char *key, bool has, double value)
{
    nf_pk_str (pk, key);
    if (has)
        msgpack_pack_double (pk, value);
    else
        msgpack_pack_nil (pk);
}

static void
s_stage (const nf_task_t *task, nf_result_t *result, void *arg)
{
    const s_opts_t *all = (const s_opts_t *) arg;
    nf_analyze_opts_t opts = all->analyze;
    const msgpack_object *options = nf_mp_get (task->job, "options");
    int64_t top_n = 10, value;
    nf_mp_get_int (options, "top_n", &top_n);
    if (nf_mp_get_int (options, "min_views", &value))
        opts.min_views = value;
    if (nf_mp_get_int (options, "max_age_days", &value))
        opts.max_age_days = value;
    opts.format = nf_mp_is_str (nf_mp_get (options, "format"), "long")    ? NF_FORMAT_LONG
                  : nf_mp_is_str (nf_mp_get (options, "format"), "short") ? NF_FORMAT_SHORT
                                                                          : NF_FORMAT_ANY;
    double reference = 0;
    const char *created;
    size_t created_len;
    if (nf_mp_get_str (nf_mp_get (task->input, "stats"), "created_at", &created, &created_len))
        nf_time_parse (created, created_len, &reference);

    const msgpack_object *videos = nf_mp_get (task->input, "videos");
    if (!videos || videos->type != MSGPACK_OBJECT_ARRAY) {
        nf_result_error (result, false, "task input has no 'videos' array");
        return;
    }
    size_t n = videos->via.array.size;
    nf_candidate_t *c = calloc (n + 1, sizeof *c);
    char **ids = calloc (n + 1, sizeof *ids);
    size_t *order = calloc (n + 1, sizeof *order);
    if (!c || !ids || !order)
        abort ();
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *v = &videos->via.array.ptr[i];
        s_candidate (v, reference, &c[i]);
        ids[i] = nf_mp_dup_str (v, "video_id");
        c[i].video_id = ids[i] ? ids[i] : "";
        /* Upload ages from the start of the job's day (UTC): two runs of a
           niche on one day take the same uploads as matured. */
        s_baseline (&c[i], v, nf_mp_get (task->input, "channels"),
                    floor (reference / 86400) * 86400, &all->baseline);
    }
    size_t ranked = nf_analyze (c, n, &opts, order);
    json_t *df = s_phrase_df (videos);

    msgpack_packer pk;
    nf_result_output_packer (result, &pk);
    msgpack_pack_map (&pk, 1);
    nf_pk_str (&pk, "videos");
    msgpack_pack_array (&pk, n);
    for (size_t r = 0; r < n; r++) {
        const nf_candidate_t *v = &c[order[r]];
        bool filtered = v->filtered != NULL;
        msgpack_pack_map (&pk, filtered ? 4 : 5);
        nf_pk_kv_str (&pk, "video_id", v->video_id);
        nf_pk_kv_str (&pk, "status", filtered ? "reject" : v->rank <= top_n ? "ok" : "keep");
        if (filtered)
            nf_pk_kv_str (&pk, "reason", v->filtered);
        else {
            nf_pk_kv_int (&pk, "rank", v->rank);
            nf_pk_str (&pk, "composite");
            msgpack_pack_double (&pk, v->composite);
        }
        nf_pk_str (&pk, "scores");
        msgpack_pack_map (&pk, NF_C_COUNT + 9);
        for (int k = 0; k < NF_C_COUNT; k++)
            s_pack_num (&pk, nf_component_names[k], v->has[k], v->value[k]);
        nf_pk_str (&pk, "percentiles");
        msgpack_pack_map (&pk, NF_C_COUNT);
        for (int k = 0; k < NF_C_COUNT; k++)
            s_pack_num (&pk, nf_component_names[k], v->has[k] && !filtered, v->pct[k]);
        s_pack_num (&pk, "age_days", v->age_days >= 0, v->age_days);
        s_pack_num (&pk, "channel_avg_views", v->has_channel && v->channel_videos > 0,
                    v->channel_videos > 0 ? v->channel_views / v->channel_videos : 0);
        /* The headline figure: views against the baseline ("4.2x"). */
        s_pack_num (&pk, "outlier_x", v->has[NF_C_MULTIPLIER], v->value[NF_C_MULTIPLIER]);
        s_pack_num (&pk, "baseline", v->baseline_source != NF_BASE_NONE, v->baseline);
        nf_pk_kv_str (&pk, "baseline_source", nf_base_source_names[v->baseline_source]);
        nf_pk_kv_int (&pk, "baseline_uploads", v->baseline_n);
        s_pack_phrases (&pk, &videos->via.array.ptr[order[r]], df, n);
        nf_pk_str (&pk, "weights");
        msgpack_pack_map (&pk, NF_C_COUNT);
        for (int k = 0; k < NF_C_COUNT; k++)
            s_pack_num (&pk, nf_component_names[k], true, opts.weights[k]);
    }
    nf_info ("job %lld: %zu videos, %zu ranked, top %lld become OUTLIER", (long long) task->job_id,
             n, ranked, (long long) top_n);
    json_decref (df);
    for (size_t i = 0; i < n; i++)
        free (ids[i]);
    free (ids);
    free (order);
    free (c);
}

int
main (int argc, char **argv)
{
    s_opts_t opts;
    memset (&opts, 0, sizeof opts);
    return nf_worker_main (argc, argv, "nf-analyst", "analyze", s_init, s_stage, &opts);
}
