/*  nf_report: what the broker says about itself, on the main thread: a
    stats event on the PUB socket every STATS_MS (nf-monitor shows it)
    and, with NF_METRICS_BIND, the Prometheus text it renders for the
    metrics endpoint (nf_metrics.c serves it). Reads counters only; the
    queue depth comes from the office thread every WAITING_MS
    (nf_office.c). */
#include "nf_broker_int.h"
#include "nf_log.h"
#include "nf_util.h"

void
nf_broker_publish_stats (nf_broker_t *self)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    const nf_store_stats_t *st = &self->cycle_stats;
    msgpack_pack_map (&pk, 9);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_str (&pk, "type", "stats");
    nf_pk_kv_int (&pk, "claimed", (int64_t) st->claimed);
    nf_pk_kv_int (&pk, "applied", (int64_t) st->applied);
    nf_pk_kv_int (&pk, "fenced", (int64_t) (st->fenced + self->late_fenced));
    nf_pk_kv_int (&pk, "dropped", (int64_t) self->dropped);
    nf_pk_kv_int (&pk, "dead_workers", (int64_t) self->dead_workers);
    nf_pk_kv_bool (&pk, "database", self->office_db_up && !st->systemic);
    nf_pk_str (&pk, "services");
    msgpack_pack_map (&pk, zhashx_size (self->services));
    for (nf_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        nf_pk_str (&pk, svc->name);
        msgpack_pack_map (&pk, 5);
        nf_pk_kv_int (&pk, "workers", (int64_t) svc->workers);
        nf_pk_kv_int (&pk, "idle", (int64_t) zlistx_size (svc->idle));
        nf_pk_kv_int (&pk, "queued", (int64_t) zlistx_size (svc->queue));
        nf_pk_kv_int (&pk, "dispatched", (int64_t) svc->dispatched);
        nf_pk_kv_int (&pk, "replies", (int64_t) svc->replies);
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "nf.stats.");
    zmsg_addmem (msg, sb.data, sb.size);
    zmsg_send (&msg, self->pub);
    msgpack_sbuffer_destroy (&sb);
}

/* One family: HELP and TYPE, then a line per service of FIELD. */
#define S_PER_SERVICE(m_name, m_type, m_help, m_expr)                                      \
    do {                                                                                   \
        nf_buf_printf (b, "# HELP %s %s\n# TYPE %s %s\n", m_name, m_help, m_name, m_type); \
        for (nf_service_t *svc = zhashx_first (self->services); svc;                       \
             svc = zhashx_next (self->services))                                           \
            nf_buf_printf (b, "%s{service=\"%s\"} %lld\n", m_name, svc->name,              \
                           (long long) (m_expr));                                          \
    } while (0)

/* The families with a line per service. */
static void
s_metrics_services (nf_broker_t *self, nf_buf_t *b)
{
    S_PER_SERVICE ("nf_tasks_dispatched_total", "counter", "Tasks sent to workers.",
                   svc->dispatched);
    S_PER_SERVICE ("nf_tasks_replies_total", "counter", "Replies received from workers.",
                   svc->replies);
    S_PER_SERVICE ("nf_tasks_completed_total", "counter",
                   "Video transitions committed to the next state.", svc->completed);
    S_PER_SERVICE ("nf_tasks_failed_total", "counter", "Videos moved to FAILED.", svc->failed);
    S_PER_SERVICE ("nf_tasks_retried_total", "counter", "Retries scheduled with backoff.",
                   svc->retried);
    S_PER_SERVICE ("nf_tasks_rejected_total", "counter", "Videos moved to REJECTED.",
                   svc->rejected);
    S_PER_SERVICE ("nf_lease_expiries_total", "counter",
                   "Dispatched tasks whose lease ran out before their reply.", svc->lease_expired);
    S_PER_SERVICE ("nf_queue_depth", "gauge",
                   "Tasks claimable now in the database (refreshed every 5 s).", svc->waiting);
    S_PER_SERVICE ("nf_queue_claimed", "gauge", "Tasks claimed and waiting for an idle worker.",
                   zlistx_size (svc->queue));
    for (nf_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        svc->in_flight = 0;
    for (nf_claimed_t *t = zhashx_first (self->inflight); t; t = zhashx_next (self->inflight)) {
        nf_service_t *svc = zhashx_lookup (self->services, t->claim.stage->service);
        if (svc)
            svc->in_flight++;
    }
    S_PER_SERVICE ("nf_tasks_in_flight", "gauge", "Tasks held by workers now.", svc->in_flight);
    S_PER_SERVICE ("nf_workers", "gauge", "Workers registered (alive).", svc->workers);
    S_PER_SERVICE ("nf_workers_idle", "gauge", "Workers waiting for a task.",
                   zlistx_size (svc->idle));
    nf_buf_printf (b, "# HELP nf_claim_seconds Latency of one claim statement.\n"
                      "# TYPE nf_claim_seconds histogram\n");
    for (nf_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        char labels[96];
        snprintf (labels, sizeof labels, "service=\"%s\"", svc->name);
        nf_hist_render (&svc->claim_hist, b, "nf_claim_seconds", labels);
    }
}

void
nf_broker_render_metrics (nf_broker_t *self, int64_t now)
{
    const nf_store_stats_t *st = &self->cycle_stats;
    nf_buf_t b;
    nf_buf_init (&b);
    s_metrics_services (self, &b);
    nf_buf_printf (&b, "# HELP nf_commit_seconds Latency of one cycle: replies applied and work "
                       "claimed in one transaction.\n"
                       "# TYPE nf_commit_seconds histogram\n");
    nf_hist_render (&self->commit_hist, &b, "nf_commit_seconds", "");
    nf_buf_printf (
        &b,
        "# HELP nf_claimed_total Tasks claimed.\n# TYPE nf_claimed_total counter\n"
        "nf_claimed_total %llu\n"
        "# HELP nf_applied_total Replies applied.\n# TYPE nf_applied_total counter\n"
        "nf_applied_total %llu\n"
        "# HELP nf_leases_renewed_total Leases of live tasks renewed.\n"
        "# TYPE nf_leases_renewed_total counter\nnf_leases_renewed_total %llu\n"
        "# HELP nf_fenced_total Replies refused: their lease was no longer theirs.\n"
        "# TYPE nf_fenced_total counter\nnf_fenced_total %llu\n"
        "# HELP nf_dropped_total Malformed messages dropped.\n"
        "# TYPE nf_dropped_total counter\nnf_dropped_total %llu\n"
        "# HELP nf_client_drops_total Client replies dropped: the client stopped "
        "reading (or left).\n"
        "# TYPE nf_client_drops_total counter\nnf_client_drops_total %llu\n"
        "# HELP nf_worker_drops_total Workers forgotten: they stopped reading.\n"
        "# TYPE nf_worker_drops_total counter\nnf_worker_drops_total %llu\n"
        "# HELP nf_dead_workers_total Workers declared dead (missed heartbeats).\n"
        "# TYPE nf_dead_workers_total counter\nnf_dead_workers_total %llu\n"
        "# HELP nf_database_up 1 when the broker is connected to PostgreSQL and it accepts the "
        "cycle's statements.\n"
        "# TYPE nf_database_up gauge\nnf_database_up %d\n"
        "# HELP nf_curve_admitted_total CURVE handshakes admitted (0: CURVE off).\n"
        "# TYPE nf_curve_admitted_total counter\nnf_curve_admitted_total %llu\n"
        "# HELP nf_curve_refused_total CURVE handshakes refused: key not allowed.\n"
        "# TYPE nf_curve_refused_total counter\nnf_curve_refused_total %llu\n"
        "# HELP nf_pruned_total What retention pruned (NF_RETAIN_DAYS): videos' texts, video "
        "history rows, log rows, jobs done.\n"
        "# TYPE nf_pruned_total counter\nnf_pruned_total{what=\"texts\"} %llu\n"
        "nf_pruned_total{what=\"history\"} %llu\nnf_pruned_total{what=\"logs\"} %llu\n"
        "nf_pruned_total{what=\"jobs\"} %llu\n"
        "# HELP nf_uptime_seconds Seconds since the broker started.\n"
        "# TYPE nf_uptime_seconds gauge\nnf_uptime_seconds %.1f\n",
        (unsigned long long) st->claimed, (unsigned long long) st->applied,
        (unsigned long long) st->renewed, (unsigned long long) (st->fenced + self->late_fenced),
        (unsigned long long) self->dropped, (unsigned long long) self->client_drops,
        (unsigned long long) self->worker_drops, (unsigned long long) self->dead_workers,
        self->office_db_up && !st->systemic ? 1 : 0,
        (unsigned long long) nf_curve_admitted (self->curve),
        (unsigned long long) nf_curve_refused (self->curve),
        (unsigned long long) self->pruned.texts, (unsigned long long) self->pruned.history,
        (unsigned long long) self->pruned.logs, (unsigned long long) self->pruned.jobs,
        (double) (now - self->started_ms) / 1000.0);
    nf_metrics_set (self->metrics, b.data, b.len);
    nf_buf_free (&b);
}
