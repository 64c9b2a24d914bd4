/*  nf-geo-validator: the `geo` stage, CLEANED to VALIDATED with
    tier1_validated = 1, or REJECTED `not_tier1` / `unknown_country`.
    A thin main around nf_geo. */
#include "nf_geo.h"
#include "nf_worker.h"

static int
s_init (nf_config_t *config, void *arg)
{
    char err[256];
    if (nf_tier1_parse (nf_config_str (config, NF_CFG_TIER1), (nf_tier1_t *) arg, err, sizeof err)
        != 0) {
        fprintf (stderr, "nf-geo-validator: NF_TIER1: %s\n", err);
        return -1;
    }
    return 0;
}

static void
s_stage (const nf_task_t *task, nf_result_t *result, void *arg)
{
    const nf_tier1_t *set = (const nf_tier1_t *) arg;
    const msgpack_object *meta = nf_mp_get (task->input, "meta");
    const msgpack_object *data = nf_mp_get (nf_mp_get (task->input, "channel"), "data");
    const char *country = NULL, *audio = NULL, *lang = NULL;
    size_t country_len = 0, audio_len = 0, lang_len = 0;
    nf_mp_get_str (data, "country", &country, &country_len);
    nf_mp_get_str (meta, "default_audio_language", &audio, &audio_len);
    nf_mp_get_str (meta, "default_language", &lang, &lang_len);
    nf_geo_result_t g;
    nf_geo_check (set, country, country_len, audio, audio_len, lang, lang_len, &g);
    msgpack_packer pk;
    nf_result_output_packer (result, &pk);
    bool pass = g.verdict == NF_GEO_PASS;
    msgpack_pack_map (&pk, pass ? 2 : 1);
    if (pass)
        nf_pk_kv_int (&pk, "tier1_validated", 1);
    nf_pk_str (&pk, "meta");
    msgpack_pack_map (&pk, 2);
    if (g.country[0])
        nf_pk_kv_str (&pk, "country", g.country);
    else
        nf_pk_kv_nil (&pk, "country");
    nf_pk_kv_str (&pk, "country_source", g.source);
    if (!pass)
        nf_result_reject (result, "%s", nf_geo_reason (g.verdict));
}

int
main (int argc, char **argv)
{
    nf_tier1_t set;
    return nf_worker_main (argc, argv, "nf-geo-validator", "geo", s_init, s_stage, &set);
}
