/*  nf-keygen: make the CURVE certificates of a nicheflow deployment.

        nf-keygen [-d DIR] [--force] [--role ROLE --allow ALLOW] NAME...
        nf-keygen --show FILE                  print a certificate's public key

    For each NAME it writes DIR/NAME.cert (the public key) and
    DIR/NAME.cert_secret (both keys, mode 0600: NF_CURVE_CERT of the program
    it belongs to). A key's role is the folder of the broker's
    NF_CURVE_ALLOW its public certificate is in: ALLOW/workers,
    ALLOW/operators or ALLOW/viewers; with --role worker|operator|viewer and
    --allow ALLOW it is copied there (the three folders are made when
    missing). The broker's own public certificate goes to every worker and
    client as NF_CURVE_BROKER_CERT. Existing files are kept unless --force.
    Exit codes: 0 done, 1 a file could not be written or read, 2 bad
    arguments. */
#include "nf_version.h"

#include <czmq.h>
#include <sys/stat.h>

static const char *s_usage =
    "Usage: nf-keygen [-d DIR] [--force] [--role worker|operator|viewer --allow ALLOW] NAME...\n"
    "       nf-keygen --show FILE\n"
    "Makes a CURVE key pair per NAME: DIR/NAME.cert (public) and DIR/NAME.cert_secret\n"
    "(mode 0600: NF_CURVE_CERT of the program it belongs to). DIR defaults to '.'.\n"
    "A key's role is the folder of the broker's NF_CURVE_ALLOW its .cert is in:\n"
    "workers/ (may register and reply), operators/ (every client service), viewers/\n"
    "(status, list, export downloads, events). --role and --allow copy it there.\n"
    "The broker's own .cert goes to every worker and client (NF_CURVE_BROKER_CERT).\n"
    "Exit codes: 0 done, 1 a file could not be written or read, 2 bad arguments.\n";

static const char *const s_roles[] = {"worker", "operator", "viewer"};

/* A name becomes a file name: letters, digits, '-', '_' and '.' only. */
static bool
s_name_ok (const char *name)
{
    if (!*name || *name == '.' || strlen (name) > 100)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum ((unsigned char) *p) && !strchr ("-_.", *p))
            return false;
    return true;
}

/* ALLOW/workers, /operators and /viewers exist. 0 or -1. */
static int
s_allow_folders (const char *allow)
{
    for (size_t r = 0; r < sizeof s_roles / sizeof s_roles[0]; r++)
        if (zsys_dir_create ("%s/%ss", allow, s_roles[r]) != 0) {
            fprintf (stderr, "nf-keygen: cannot create folder %s/%ss\n", allow, s_roles[r]);
            return -1;
        }
    return 0;
}

/* Copy DIR/NAME.cert into ALLOW/ROLEs/. 0 or 1. */
static int
s_list (const char *dir, const char *name, const char *allow, const char *role)
{
    char from[4096], to[4200];
    snprintf (from, sizeof from, "%s/%s.cert", dir, name);
    snprintf (to, sizeof to, "%s/%ss/%s.cert", allow, role, name);
    zfile_t *src = zfile_new (NULL, from);
    zchunk_t *chunk =
        src && zfile_input (src) == 0 ? zfile_read (src, zfile_cursize (src), 0) : NULL;
    FILE *f = chunk ? fopen (to, "wb") : NULL;
    bool ok = f && fwrite (zchunk_data (chunk), 1, zchunk_size (chunk), f) == zchunk_size (chunk);
    ok = f && fclose (f) == 0 && ok;
    if (!ok)
        fprintf (stderr, "nf-keygen: cannot copy %s to %s: %s\n", from, to, strerror (errno));
    else
        printf ("%s: role %s\n", to, role);
    zchunk_destroy (&chunk);
    zfile_destroy (&src);
    return ok ? 0 : 1;
}

static int
s_make (const char *dir, const char *name, bool force)
{
    char pub[4096], sec[4200];
    snprintf (pub, sizeof pub, "%s/%s.cert", dir, name);
    snprintf (sec, sizeof sec, "%s_secret", pub);
    if (!force && (zsys_file_exists (pub) || zsys_file_exists (sec))) {
        fprintf (stderr, "nf-keygen: %s exists (--force replaces it)\n", pub);
        return 1;
    }
    zcert_t *cert = zcert_new ();
    if (!cert) {
        fprintf (stderr, "nf-keygen: cannot make a key pair\n");
        return 1;
    }
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "created-by", "nf-keygen %s", NF_VERSION);
    /* The secret file is created 0600 before a key is written into it. */
    mode_t old = umask (077);
    int rc = zcert_save_secret (cert, sec);
    umask (old);
    if (rc == 0)
        rc = zcert_save_public (cert, pub);
    if (rc != 0 || chmod (sec, 0600) != 0)
        fprintf (stderr, "nf-keygen: cannot write %s: %s\n", pub, strerror (errno));
    else
        printf ("%s %s\n", zcert_public_txt (cert), pub);
    zcert_destroy (&cert);
    return rc != 0 ? 1 : 0;
}

int
main (int argc, char **argv)
{
    const char *dir = ".", *role = NULL, *allow = NULL;
    bool force = false;
    int first = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (streq (a, "--help") || streq (a, "-h")) {
            fputs (s_usage, stdout);
            return 0;
        }
        if (streq (a, "--version")) {
            printf ("nf-keygen %s\n", NF_VERSION);
            return 0;
        }
        if (streq (a, "--show")) {
            if (i + 2 != argc) {
                fprintf (stderr, "nf-keygen: --show takes one FILE\n%s", s_usage);
                return 2;
            }
            zcert_t *cert = zsys_file_exists (argv[i + 1]) ? zcert_load (argv[i + 1]) : NULL;
            if (!cert) {
                fprintf (stderr, "nf-keygen: cannot read a certificate from %s\n", argv[i + 1]);
                return 1;
            }
            const char *name = zcert_meta (cert, "name");
            printf ("%s %s\n", zcert_public_txt (cert), name ? name : "");
            zcert_destroy (&cert);
            return 0;
        }
        if (streq (a, "--force"))
            force = true;
        else if (streq (a, "-d") && i + 1 < argc)
            dir = argv[++i];
        else if (streq (a, "--role") && i + 1 < argc)
            role = argv[++i];
        else if (streq (a, "--allow") && i + 1 < argc)
            allow = argv[++i];
        else if (a[0] == '-') {
            fprintf (stderr, "nf-keygen: unknown flag '%s'\n%s", a, s_usage);
            return 2;
        }
        else {
            first = i;
            break;
        }
    }
    if (first == argc) {
        fprintf (stderr, "nf-keygen: no NAME given\n%s", s_usage);
        return 2;
    }
    bool known = false;
    for (size_t r = 0; role && r < sizeof s_roles / sizeof s_roles[0]; r++)
        known = known || streq (role, s_roles[r]);
    if ((role && !known) || !role != !allow) {
        fprintf (stderr,
                 "nf-keygen: --role (worker, operator or viewer) and --allow ALLOW go "
                 "together\n%s",
                 s_usage);
        return 2;
    }
    for (int i = first; i < argc; i++)
        if (!s_name_ok (argv[i])) {
            fprintf (stderr, "nf-keygen: '%s' is not a name (letters, digits, - _ . only)\n",
                     argv[i]);
            return 2;
        }
    if (zsys_dir_create ("%s", dir) != 0) {
        fprintf (stderr, "nf-keygen: cannot create folder %s\n", dir);
        return 1;
    }
    if (allow && s_allow_folders (allow) != 0)
        return 1;
    int rc = 0;
    for (int i = first; i < argc; i++)
        if (s_make (dir, argv[i], force) != 0 || (allow && s_list (dir, argv[i], allow, role) != 0))
            rc = 1;
    return rc;
}
