/*  nf-keygen: make the CURVE certificates of a nicheflow deployment.

        nf-keygen [-d DIR] [--force] NAME...   a key pair per NAME
        nf-keygen --show FILE                  print a certificate's public key

    For each NAME it writes DIR/NAME.cert (the public key: copy it to the
    broker's NF_CURVE_ALLOW folder, or, for the broker's own, to every worker
    and client as NF_CURVE_BROKER_CERT) and DIR/NAME.cert_secret (both keys,
    mode 0600: NF_CURVE_CERT of the program it belongs to). Existing files
    are kept unless --force. Exit codes: 0 done, 1 a file could not be
    written or read, 2 bad arguments. */
#include "nf_version.h"

#include <czmq.h>
#include <sys/stat.h>

static const char *s_usage =
    "Usage: nf-keygen [-d DIR] [--force] NAME...\n"
    "       nf-keygen --show FILE\n"
    "Makes a CURVE key pair per NAME: DIR/NAME.cert (public: the broker's NF_CURVE_ALLOW\n"
    "folder, or NF_CURVE_BROKER_CERT for the broker's own) and DIR/NAME.cert_secret\n"
    "(mode 0600: NF_CURVE_CERT of the program it belongs to). DIR defaults to '.'.\n"
    "Exit codes: 0 done, 1 a file could not be written or read, 2 bad arguments.\n";

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
    const char *dir = ".";
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
    int rc = 0;
    for (int i = first; i < argc; i++)
        if (s_make (dir, argv[i], force) != 0)
            rc = 1;
    return rc;
}
