/*  nf-sanitizer: the `sanitize` stage, RAW to CLEANED (or REJECTED
    `no_transcript` / `low_quality`). A thin main around nf_sanitize. */
#include "nf_ai.h"
#include "nf_log.h"
#include "nf_sanitize.h"
#include "nf_worker.h"

#define NF_KEY_PHRASES 8 /* per transcript */

typedef struct {
    int64_t quality_min; /* NF_QUALITY_MIN */
    int64_t max_bytes;   /* NF_TRANSCRIPT_MAX */
} s_opts_t;

static int
s_init (nf_config_t *config, void *arg)
{
    s_opts_t *o = (s_opts_t *) arg;
    o->quality_min = nf_config_int (config, NF_CFG_QUALITY_MIN);
    o->max_bytes = nf_config_int (config, NF_CFG_TRANSCRIPT_MAX);
    return 0;
}

static void
s_stage (const nf_task_t *task, nf_result_t *result, void *arg)
{
    const s_opts_t *o = (const s_opts_t *) arg;
    const char *raw = NULL;
    size_t len = 0;
    if (!nf_mp_get_str (task->input, "transcript", &raw, &len) || len == 0) {
        nf_result_reject (result, "no_transcript");
        return;
    }
    nf_sanitized_t s;
    if (nf_sanitize (raw, len, (size_t) o->max_bytes, &s) != 0) {
        nf_result_error (result, true, "out of memory sanitizing %zu bytes", len);
        return;
    }
    msgpack_packer pk;
    nf_result_output_packer (result, &pk);
    msgpack_pack_map (&pk, 3);
    nf_pk_kv_str (&pk, "clean_text", s.text);
    nf_pk_str (&pk, "quality");
    msgpack_pack_double (&pk, s.quality);
    nf_pk_str (&pk, "meta");
    /* The transcript's key phrases: the analyst weighs them against the
       job's other transcripts, the architect writes from the distinct ones. */
    char *kp[NF_KEY_PHRASES];
    size_t nkp = nf_ai_key_phrases (s.text, kp, NF_KEY_PHRASES);
    msgpack_pack_map (&pk, 2);
    nf_pk_str (&pk, "key_phrases");
    msgpack_pack_array (&pk, nkp);
    for (size_t i = 0; i < nkp; i++) {
        nf_pk_str (&pk, kp[i]);
        free (kp[i]);
    }
    nf_pk_str (&pk, "sanitize");
    msgpack_pack_map (&pk, 10);
    nf_pk_kv_int (&pk, "words", (int64_t) s.words);
    nf_pk_kv_int (&pk, "unique_words", (int64_t) s.unique_words);
    nf_pk_kv_int (&pk, "real_words", (int64_t) s.real_words);
    nf_pk_kv_int (&pk, "input_bytes", (int64_t) s.input_bytes);
    nf_pk_kv_int (&pk, "noise_bytes", (int64_t) s.noise_bytes);
    nf_pk_kv_bool (&pk, "truncated", s.truncated);
    nf_pk_str (&pk, "length");
    msgpack_pack_double (&pk, s.length);
    nf_pk_str (&pk, "diversity");
    msgpack_pack_double (&pk, s.diversity);
    nf_pk_str (&pk, "real");
    msgpack_pack_double (&pk, s.real);
    nf_pk_str (&pk, "clean");
    msgpack_pack_double (&pk, s.clean);
    if (s.quality < (double) o->quality_min)
        nf_result_reject (result, "low_quality");
    nf_debug ("%s: %zu words, quality %.1f", task->video_id, s.words, s.quality);
    nf_sanitized_free (&s);
}

int
main (int argc, char **argv)
{
    s_opts_t opts = {0};
    return nf_worker_main (argc, argv, "nf-sanitizer", "sanitize", s_init, s_stage, &opts);
}
