/*  nf-httpload: a small closed-loop HTTP load generator (libcurl multi) for
    the benchmarks: CONNS keep-alive connections, each sending the next URL
    of the list as soon as its previous answer is in, for SECONDS. Prints
    one line: requests, errors, seconds, requests/s, median and p99 latency.

        nf-httpload SECONDS CONNS URL [URL...]   */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static size_t
s_discard (char *data, size_t size, size_t n, void *arg)
{
    (void) data;
    (void) arg;
    return size * n;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    if (argc < 4) {
        fprintf (stderr, "usage: nf-httpload SECONDS CONNS URL [URL...]\n");
        return 2;
    }
    double seconds = atof (argv[1]);
    int conns = atoi (argv[2]), nurls = argc - 3, next = 0;
    if (seconds <= 0 || seconds > 600 || conns < 1 || conns > 1024) {
        fprintf (stderr, "nf-httpload: 0 < SECONDS <= 600, 1 <= CONNS <= 1024\n");
        return 2;
    }
    curl_global_init (CURL_GLOBAL_ALL);
    CURLM *m = curl_multi_init ();
    CURL **easy = calloc ((size_t) conns, sizeof *easy);
    double *started = calloc ((size_t) conns, sizeof *started);
    size_t cap = 1 << 20, nlat = 0;
    double *lat = malloc (cap * sizeof *lat);
    long done = 0, errors = 0;
    double t0 = s_now (), end = t0 + seconds;
    for (int i = 0; i < conns; i++) {
        easy[i] = curl_easy_init ();
        curl_easy_setopt (easy[i], CURLOPT_WRITEFUNCTION, s_discard);
        curl_easy_setopt (easy[i], CURLOPT_PRIVATE, (void *) (long) i);
        curl_easy_setopt (easy[i], CURLOPT_URL, argv[3 + next++ % nurls]);
        started[i] = s_now ();
        curl_multi_add_handle (m, easy[i]);
    }
    int running = conns;
    while (running > 0) {
        curl_multi_perform (m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read (m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            long i = 0, code = 0;
            char *p = NULL;
            curl_easy_getinfo (e, CURLINFO_PRIVATE, &p);
            i = (long) p;
            curl_easy_getinfo (e, CURLINFO_RESPONSE_CODE, &code);
            double now = s_now ();
            if (msg->data.result != CURLE_OK || code != 200)
                errors++;
            else {
                done++;
                if (nlat < cap)
                    lat[nlat++] = now - started[i];
            }
            curl_multi_remove_handle (m, e);
            if (now < end) {
                curl_easy_setopt (e, CURLOPT_URL, argv[3 + next++ % nurls]);
                started[i] = now;
                curl_multi_add_handle (m, e);
                running++;
            }
        }
        if (running > 0)
            curl_multi_poll (m, NULL, 0, 100, NULL);
    }
    double took = s_now () - t0;
    qsort (lat, nlat, sizeof *lat, s_cmp);
    printf ("requests %ld errors %ld seconds %.2f rps %.0f p50_ms %.2f p99_ms %.2f\n", done, errors,
            took, (double) done / took, nlat ? lat[nlat / 2] * 1e3 : 0,
            nlat ? lat[(size_t) ((double) nlat * 0.99)] * 1e3 : 0);
    for (int i = 0; i < conns; i++)
        curl_easy_cleanup (easy[i]);
    curl_multi_cleanup (m);
    free (easy);
    free (started);
    free (lat);
    curl_global_cleanup ();
    return errors > done ? 1 : 0;
}
