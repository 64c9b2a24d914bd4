/*  nf-architect: the `architect` stage, OUTLIER to READY. Writes the
    creator's content for one outlier: with NF_LLM_URL set through an
    OpenAI-compatible server (nf_llm), otherwise with the built-in offline
    generator (nf_ai_generate). One request at a time per process: run more
    processes for more concurrency. */
#include "nf_ai.h"
#include "nf_llm.h"
#include "nf_log.h"
#include "nf_worker.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nf_llm_opts_t llm_opts; /* from the configuration */
    nf_llm_t *llm;          /* NULL: the built-in generator */
} s_state_t;

static int
s_init (nf_config_t *config, void *arg)
{
    s_state_t *st = (s_state_t *) arg;
    const char *url = nf_config_str (config, NF_CFG_LLM_URL);
    if (!*url)
        return 0;
    st->llm_opts = (nf_llm_opts_t){
        .url = url,
        .model = nf_config_str (config, NF_CFG_LLM_MODEL),
        .api_key = nf_config_str (config, NF_CFG_LLM_API_KEY),
        .timeout_ms = (long) nf_config_int (config, NF_CFG_LLM_TIMEOUT_MS),
        .retries = (int) nf_config_int (config, NF_CFG_LLM_RETRIES),
        .transcript_bytes = (size_t) nf_config_int (config, NF_CFG_LLM_CONTEXT_TOKENS) * 4,
        .prompt_dir = nf_config_str (config, NF_CFG_PROMPT_DIR),
    };
    char err[256];
    st->llm = nf_llm_new (&st->llm_opts, err, sizeof err);
    if (!st->llm) {
        fprintf (stderr, "nf-architect: %s\n", err);
        return -1;
    }
    return 0;
}

static double
s_num (const msgpack_object *map, const char *key, bool *has)
{
    double v = 0;
    bool ok = nf_mp_get_num (map, key, &v);
    if (has)
        *has = ok;
    return ok ? v : 0;
}

static void
s_pack_list (msgpack_packer *pk, const char *key, char *const *items, int n)
{
    nf_pk_str (pk, key);
    msgpack_pack_array (pk, (size_t) n);
    for (int i = 0; i < n; i++)
        nf_pk_str (pk, items[i]);
}

static void
s_stage (const nf_task_t *task, nf_result_t *result, void *arg)
{
    s_state_t *st = (s_state_t *) arg;
    const msgpack_object *meta = nf_mp_get (task->input, "meta");
    const msgpack_object *scores = nf_mp_get (task->input, "scores");
    const msgpack_object *pct = nf_mp_get (scores, "percentiles");
    const msgpack_object *ch = nf_mp_get (nf_mp_get (task->input, "channel"), "data");
    char *niche = nf_mp_dup_str (task->job, "niche");
    char *sub = nf_mp_dup_str (task->job, "sub_niche");
    char *title = nf_mp_dup_str (meta, "title");
    char *channel = nf_mp_dup_str (ch, "title");
    char *text = nf_mp_dup_str (task->input, "clean_text");
    nf_ai_input_t in;
    memset (&in, 0, sizeof in);
    in.video_id = task->video_id;
    in.niche = niche ? niche : "";
    in.sub_niche = sub ? sub : "";
    in.title = title ? title : "";
    in.channel = channel ? channel : "";
    in.transcript = text ? text : "";
    in.views = s_num (meta, "views", NULL);
    bool hidden = false;
    nf_mp_get_bool (ch, "hidden_subscribers", &hidden);
    in.subscribers = s_num (ch, "subscribers", &in.has_subscribers);
    in.has_subscribers = in.has_subscribers && !hidden;
    in.multiplier = s_num (scores, "multiplier", &in.has_multiplier);
    in.views_per_sub = s_num (scores, "views_per_sub", &in.has_views_per_sub);
    in.velocity = s_num (scores, "velocity", &in.has_velocity);
    in.engagement = s_num (scores, "engagement", &in.has_engagement);
    in.age_days = s_num (scores, "age_days", &in.has_age);
    in.channel_avg = s_num (scores, "channel_avg_views", &in.has_channel_avg);
    /* The multiplier is against the baseline (the median of recent uploads,
       or the lifetime mean when there were too few): say which. */
    bool has_base = false;
    double base = s_num (scores, "baseline", &has_base);
    const char *src;
    size_t src_len;
    in.baseline_median = nf_mp_get_str (scores, "baseline_source", &src, &src_len) && src_len == 13
                         && memcmp (src, "recent_median", 13) == 0;
    if (has_base) {
        in.channel_avg = base;
        in.has_channel_avg = true;
    }
    in.composite = s_num (task->input, "composite", NULL);
    in.quality = s_num (task->input, "quality", NULL);
    bool has;
    in.pct_multiplier = s_num (pct, "multiplier", &has);
    if (!has)
        in.pct_multiplier = -1;
    in.pct_velocity = s_num (pct, "velocity", &has);
    if (!has)
        in.pct_velocity = -1;
    in.pct_engagement = s_num (pct, "engagement", &has);
    if (!has)
        in.pct_engagement = -1;
    /* Its distinct phrases, against the job's other transcripts (the
       analyst's); the strings live in the task. */
    char *phrases[8] = {NULL};
    const msgpack_object *kp = nf_mp_get (scores, "key_phrases");
    for (uint32_t k = 0, m = 0;
         kp && kp->type == MSGPACK_OBJECT_ARRAY && k < kp->via.array.size && m < 8; k++) {
        const msgpack_object *p = &kp->via.array.ptr[k];
        if (p->type == MSGPACK_OBJECT_STR && p->via.str.size > 0 && p->via.str.size < 96)
            in.phrases[m] = phrases[m] = strndup (p->via.str.ptr, p->via.str.size), m++;
    }
    int64_t rank = 0;
    nf_mp_get_int (task->input, "rank", &rank);
    in.rank = (int) rank;

    nf_ai_t ai;
    int64_t tokens = 0;
    const char *source = "builtin";
    if (st->llm) {
        char err[768];
        nf_llm_status_t s = nf_llm_write (st->llm, &in, &ai, &tokens, err, sizeof err);
        if (s != NF_LLM_OK)
            nf_result_error (result, s == NF_LLM_RETRYABLE, "%s", err);
        source = "llm";
    }
    else
        nf_ai_generate (&in, &ai);
    if (tokens > 0) {
        msgpack_packer upk;
        nf_result_usage_packer (result, &upk);
        msgpack_pack_map (&upk, 1);
        nf_pk_kv_int (&upk, "tokens", tokens);
    }
    if (result->status == NF_REPLY_OK) {
        msgpack_packer pk;
        nf_result_output_packer (result, &pk);
        msgpack_pack_map (&pk, 1);
        nf_pk_str (&pk, "ai");
        msgpack_pack_map (&pk, st->llm ? 8 : 7);
        s_pack_list (&pk, "titles", ai.titles, NF_AI_TITLES);
        nf_pk_kv_str (&pk, "hook", ai.hook);
        s_pack_list (&pk, "outline", ai.outline, NF_AI_POINTS);
        nf_pk_kv_str (&pk, "thumbnail", ai.thumbnail);
        nf_pk_kv_str (&pk, "why", ai.why);
        nf_pk_kv_str (&pk, "source", source);
        if (st->llm) {
            nf_pk_kv_str (&pk, "model", st->llm_opts.model);
            nf_pk_kv_int (&pk, "tokens", tokens);
        }
        else { /* which sentence frames the built-in generator took */
            nf_pk_str (&pk, "frames");
            msgpack_pack_array (&pk, NF_AI_TITLES + 2);
            for (int f = 0; f < NF_AI_TITLES + 2; f++)
                msgpack_pack_int (&pk, ai.frames[f]);
        }
        nf_ai_free (&ai);
    }
    free (niche);
    free (sub);
    free (title);
    free (channel);
    free (text);
    for (int k = 0; k < 8; k++)
        free (phrases[k]);
}

int
main (int argc, char **argv)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_state_t st;
    memset (&st, 0, sizeof st);
    int rc = nf_worker_main (argc, argv, "nf-architect", "architect", s_init, s_stage, &st);
    nf_llm_destroy (&st.llm);
    curl_global_cleanup ();
    return rc;
}
