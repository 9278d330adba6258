/* dfnet's PKI: the manager's certificate authority, leaf certificates carrying a name and
 * a role, PEM files, and reading them back (docs/design.md "Security"; issue 3 "PKI").
 *
 * Everything is ECDSA P-256 with SHA-256 signatures, made by mbedTLS 2.28.
 *
 * Certificates (RFC 5280):
 *   CA:   subject CN=<caller's CN>, O=dfnet; self-signed; 10 years; basicConstraints
 *         CA:true pathlen 0 (critical, §4.2.1.9); keyUsage keyCertSign|cRLSign (critical,
 *         §4.2.1.3); subjectKeyIdentifier (§4.2.1.2) and authorityKeyIdentifier (§4.2.1.1).
 *   Leaf: subject CN=<name>, OU=<role>, O=dfnet; issued by the CA; basicConstraints
 *         CA:false; keyUsage digitalSignature (critical); extendedKeyUsage serverAuth +
 *         clientAuth (§4.2.1.12); subjectAltName with dNSName and iPAddress entries
 *         (§4.2.1.6; IPv4 as 4 octets, IPv6 as 16); SKI and AKI.
 *   Serial numbers: 16 random octets, positive, non-zero (§4.1.2.2).
 *   Validity: not-before = now - 5 minutes (clock skew between boards), not-after =
 *   not-before + 5 minutes + days (§4.1.2.5); a leaf never outlives its CA unless the
 *   caller gives an explicit window (tests).
 *
 * The role lives in the subject's organizationalUnitName: "host", "admin", "operator",
 * "viewer" — and "manager", the manager's own server certificate made by
 * dfnet_pki_init_state_dir(), so that a host agent or client can tell the manager apart
 * from any other holder of a certificate from the same CA. A transport must refuse
 * "manager" as a client role.
 *
 * Names (a leaf's CN, the manager name) are 1..64 characters of [A-Za-z0-9._-], not
 * starting with '.' or '-': they are also file names (<name>.crt) and log subjects.
 *
 * Errors: every function returns a dfnet_status_t and, on failure, has logged exactly
 * one line (subsystem "pki", subject = the file path or name concerned) with the reason;
 * mbedTLS failures carry mbedTLS's text (mbedtls_strerror) and the raw code (-0xNNNN).
 * Callers need not log the same failure again. Codes used throughout:
 *   INVALID_ARGUMENT     bad parameter (NULL, bad name/role/SAN, days out of range), or a
 *                        file that is not what it should be (not PEM, unparsable,
 *                        encrypted key, not ECDSA P-256, over 1 MiB);
 *   NOT_FOUND            a file that does not exist (the path is in the log line);
 *   PERMISSION_DENIED    a file or directory the process may not read/write (EACCES);
 *   FAILED_PRECONDITION  a key that does not match its certificate; a state directory
 *                        holding only part of a set (ca.crt without ca.key, ...);
 *   ALREADY_EXISTS       dfnet_pki_issue_to_dir() would overwrite a certificate;
 *   UNAUTHENTICATED      dfnet_pki_cert_verify(): untrusted, expired, not yet valid;
 *   RESOURCE_EXHAUSTED   a full disk or quota (ENOSPC, EDQUOT), or no memory or file
 *                        descriptor to read or write a file (lib/fileio.h's errno map);
 *   UNAVAILABLE          other I/O errors (EIO, ...);
 *   INTERNAL             out of memory, entropy/RNG failure, an mbedTLS writer failure.
 *
 * Threads: no global state; every function may be called from any thread. One
 * dfnet_pki_cert_t / dfnet_pki_key_t may be read by several threads at once.
 */
#ifndef DFNET_LIB_PKI_H
#define DFNET_LIB_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <mbedtls/x509_crt.h>

#include "dfnet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest name / CN / OU (RFC 5280 ub-common-name = 64), without the NUL. */
#define DFNET_PKI_NAME_MAX 64
/* Most subjectAltName entries a leaf may carry (issue refuses more; info keeps this many). */
#define DFNET_PKI_MAX_SANS 16
/* Longest SAN text: a DNS name (253) or an IPv6 address in text form; without the NUL. */
#define DFNET_PKI_SAN_MAX 253
/* Longest validity a caller may ask for, in days (100 years). */
#define DFNET_PKI_MAX_DAYS 36500
/* The CA's validity in days (10 years). */
#define DFNET_PKI_CA_DAYS 3650
/* The manager server certificate's validity in days, made by dfnet_pki_init_state_dir().
 * To renew it, remove manager.crt, manager.key and manager.pem and run init again. */
#define DFNET_PKI_MANAGER_DAYS 825

/* Who a certificate speaks for: the subject's OU. docs/design.md "Security". */
typedef enum dfnet_pki_role {
  DFNET_PKI_ROLE_NONE = 0, /* no OU, or an OU that is not a dfnet role */
  DFNET_PKI_ROLE_HOST,     /* "host": a host agent; only the host subprotocol */
  DFNET_PKI_ROLE_ADMIN,    /* "admin": + register/disable/restart drivers */
  DFNET_PKI_ROLE_OPERATOR, /* "operator": + calls */
  DFNET_PKI_ROLE_VIEWER,   /* "viewer": queries */
  DFNET_PKI_ROLE_MANAGER,  /* "manager": the manager's server certificate only */
} dfnet_pki_role_t;

/* Parse a role name ("host", "admin", "operator", "viewer", "manager"; exact, lower
 * case) into *out. Returns OK, or INVALID_ARGUMENT for anything else or NULL (out
 * untouched; nothing is logged: the caller words the error for its user). */
dfnet_status_t dfnet_pki_role_parse(const char *text, dfnet_pki_role_t *out);

/* The role's name as written in the OU ("host", ...); "none" for DFNET_PKI_ROLE_NONE and
 * anything out of range. Static string, never NULL. */
const char *dfnet_pki_role_str(dfnet_pki_role_t role);

/* Is `name` a valid dfnet name (see the top of this file)? NULL → false. Logs nothing. */
bool dfnet_pki_name_valid(const char *name);

/* A parsed certificate (the first of a file's certificates; the rest of a chain is kept
 * behind it). Opaque; free with dfnet_pki_cert_free(). */
typedef struct dfnet_pki_cert dfnet_pki_cert_t;

/* An ECDSA P-256 private key. Opaque; free with dfnet_pki_key_free(), which wipes it. */
typedef struct dfnet_pki_key dfnet_pki_key_t;

/* Free a certificate / key. NULL is a no-op. */
void dfnet_pki_cert_free(dfnet_pki_cert_t *cert);
void dfnet_pki_key_free(dfnet_pki_key_t *key);

/* ---- Making certificates --------------------------------------------------------- */

/* Create a CA: a new P-256 key and a self-signed certificate (see the top of this file),
 * valid from now - 5 minutes for DFNET_PKI_CA_DAYS days.
 * cn: the subject CN, e.g. "dfnet CA lab-a": 1..64 printable ASCII characters, none of
 *     , + = \ " < > ; # (they would need DN escaping). Copied.
 * On OK, *cert_out and *key_out are new objects the caller frees; on error both are
 * left NULL. Errors: INVALID_ARGUMENT (NULL, bad cn), INTERNAL (RNG, mbedTLS writer). */
dfnet_status_t dfnet_pki_ca_create(const char *cn, dfnet_pki_cert_t **cert_out,
                                   dfnet_pki_key_t **key_out);

/* What a leaf certificate says. All pointers are borrowed for the call only. */
typedef struct dfnet_pki_leaf_params {
  const char *name;        /* CN; a dfnet name (see above) */
  dfnet_pki_role_t role;   /* OU; HOST, ADMIN, OPERATOR, VIEWER or MANAGER */
  const char *const *sans; /* subjectAltName entries, each an IPv4/IPv6 literal
                              ("10.0.0.2", "::1": written as iPAddress) or a DNS
                              name ("lab-a.local", "*.lab": written as dNSName);
                              may be NULL when san_count is 0 */
  size_t san_count;        /* 0..DFNET_PKI_MAX_SANS */
  unsigned days;           /* validity in days, 1..DFNET_PKI_MAX_DAYS; ignored when
                              not_after != 0 */
  /* Explicit validity window (tests: expired or not-yet-valid certificates). When
   * not_after != 0, the certificate is valid from not_before to not_after (UTC seconds,
   * not_before < not_after, both within years 1950..9999), with no skew allowance and no
   * clamping to the CA's validity. Leave both 0 for the normal case. */
  time_t not_before;
  time_t not_after;
} dfnet_pki_leaf_params_t;

/* Issue a leaf certificate signed by the CA: a new P-256 key and a certificate (see the
 * top of this file). The CA key must match the CA certificate. Without an explicit
 * window, not-after is clamped to the CA's not-after.
 * On OK, *cert_out and *key_out are new objects the caller frees; on error both NULL.
 * Errors: INVALID_ARGUMENT (NULL, bad name, role NONE or out of range, a SAN that is
 * neither an IP literal nor a DNS name of [A-Za-z0-9.*-] up to 253 characters, too many
 * SANs, days out of range, bad window), FAILED_PRECONDITION (ca_key does not match
 * ca_cert, or ca_cert is not a CA), INTERNAL (RNG, mbedTLS writer). */
dfnet_status_t dfnet_pki_leaf_issue(const dfnet_pki_cert_t *ca_cert, const dfnet_pki_key_t *ca_key,
                                    const dfnet_pki_leaf_params_t *params,
                                    dfnet_pki_cert_t **cert_out, dfnet_pki_key_t **key_out);

/* ---- Files ------------------------------------------------------------------------ */
/* Every write is atomic: a temporary file in the same directory (created with mode 0600
 * by mkstemp, so a key is never readable by others, even briefly), fsync, fchmod to the
 * final mode, rename over `path`, fsync of the directory (lib/fileio.h). An existing file
 * at `path` is replaced. */

/* The certificate (only the first one) as PEM text, NUL-terminated, into out[0..cap) (about
 * 800 bytes for a dfnet leaf; 2048 always suffice). Errors: INVALID_ARGUMENT (NULL, cap 0),
 * RESOURCE_EXHAUSTED (cap too small: logged). Any thread. */
dfnet_status_t dfnet_pki_cert_pem(const dfnet_pki_cert_t *cert, char *out, size_t cap);

/* Write the certificate (only the first one) as PEM ("-----BEGIN CERTIFICATE-----"),
 * mode 0644. Errors: INVALID_ARGUMENT (NULL), NOT_FOUND (directory missing),
 * PERMISSION_DENIED, RESOURCE_EXHAUSTED (disk full), UNAVAILABLE (other I/O), INTERNAL. */
dfnet_status_t dfnet_pki_cert_write(const dfnet_pki_cert_t *cert, const char *path);

/* Write the private key as unencrypted PEM ("-----BEGIN EC PRIVATE KEY-----", SEC 1 /
 * RFC 5915), mode 0600. Errors as dfnet_pki_cert_write(). */
dfnet_status_t dfnet_pki_key_write(const dfnet_pki_key_t *key, const char *path);

/* Write certificate then key into one PEM file, mode 0600: the file libwebsockets'
 * mbedTLS client needs as its certificate path (it reads the key from there too).
 * Errors as dfnet_pki_cert_write(). */
dfnet_status_t dfnet_pki_pem_write(const dfnet_pki_cert_t *cert, const dfnet_pki_key_t *key,
                                   const char *path);

/* Load every certificate of a PEM file (at most 1 MiB); the first is the one described by
 * dfnet_pki_cert_info(). Works on a combined cert+key PEM too (the key is skipped).
 * On OK *out is a new object the caller frees; on error NULL.
 * Errors: NOT_FOUND (no such file), PERMISSION_DENIED, UNAVAILABLE (other I/O),
 * INVALID_ARGUMENT (NULL, not PEM, no certificate, a certificate mbedTLS cannot parse —
 * with its text, file over 1 MiB), INTERNAL (out of memory). */
dfnet_status_t dfnet_pki_cert_load(const char *path, dfnet_pki_cert_t **out);

/* Parse one certificate from memory: DER, or PEM (len counts the text, NUL optional).
 * For the transport, e.g. the peer's certificate from lws_tls_peer_cert_info(...,
 * LWS_TLS_CERT_INFO_DER_RAW, ...). data is copied. Errors: INVALID_ARGUMENT (NULL, len 0,
 * unparsable — with mbedTLS's text), INTERNAL (out of memory). */
dfnet_status_t dfnet_pki_cert_parse(const uint8_t *data, size_t len, dfnet_pki_cert_t **out);

/* Load an unencrypted private key (PEM: SEC 1 or PKCS#8; at most 1 MiB) from a key file
 * or a combined cert+key PEM. It must be ECDSA P-256. Logs a warning (and still loads)
 * when the file is readable by group or others. On OK *out is a new key the caller frees.
 * Errors: NOT_FOUND, PERMISSION_DENIED, UNAVAILABLE (as above), INVALID_ARGUMENT (NULL,
 * no key, unparsable — with mbedTLS's text, passphrase-protected, not ECDSA P-256),
 * INTERNAL. The file's bytes are wiped from memory after parsing. */
dfnet_status_t dfnet_pki_key_load(const char *path, dfnet_pki_key_t **out);

/* Does the key belong to the certificate's public key (mbedtls_pk_check_pair)?
 * Returns OK, FAILED_PRECONDITION when it does not (logged with the certificate's CN),
 * INVALID_ARGUMENT for NULL. */
dfnet_status_t dfnet_pki_key_check_pair(const dfnet_pki_cert_t *cert, const dfnet_pki_key_t *key);

/* ---- Reading certificates ----------------------------------------------------------- */

/* Why dfnet_pki_cert_verify() refused a certificate: a set of bits. */
typedef enum dfnet_pki_verify_reason {
  DFNET_PKI_VERIFY_UNTRUSTED = 1u << 0,     /* not signed by the CA (or a bad signature) */
  DFNET_PKI_VERIFY_EXPIRED = 1u << 1,       /* now > not-after (leaf or CA) */
  DFNET_PKI_VERIFY_NOT_YET_VALID = 1u << 2, /* now < not-before (leaf or CA) */
  DFNET_PKI_VERIFY_BAD_USAGE = 1u << 3,     /* key usage / extended key usage mismatch */
  DFNET_PKI_VERIFY_OTHER = 1u << 4,         /* anything else mbedTLS flagged */
} dfnet_pki_verify_reason_t;

/* Verify `leaf` against the trust anchor `ca` (RFC 5280 §6: signature chain to the CA,
 * and each certificate's validity period at the current time), with mbedtls_x509_crt_verify
 * and no hostname check (see dfnet_pki_cert_matches_host()).
 * reasons_out (optional): 0 on OK, else a set of dfnet_pki_verify_reason_t bits.
 * Returns OK; UNAUTHENTICATED when the certificate is refused (one WARN line with the
 * leaf's CN and mbedTLS's reasons — callers need not log it again); INVALID_ARGUMENT for
 * NULL. Expired and not-yet-valid are UNAUTHENTICATED too: the credentials are not valid
 * now; reasons_out tells them apart. */
dfnet_status_t dfnet_pki_cert_verify(const dfnet_pki_cert_t *ca, const dfnet_pki_cert_t *leaf,
                                     uint32_t *reasons_out);

/* One subjectAltName entry. */
typedef enum dfnet_pki_san_type {
  DFNET_PKI_SAN_DNS = 1, /* dNSName */
  DFNET_PKI_SAN_IP = 2,  /* iPAddress, text as inet_ntop writes it ("10.0.0.2", "::1") */
} dfnet_pki_san_type_t;

typedef struct dfnet_pki_san {
  dfnet_pki_san_type_t type;
  char text[DFNET_PKI_SAN_MAX + 1];
} dfnet_pki_san_t;

/* What a certificate says about its subject (all strings NUL-terminated, copied). */
typedef struct dfnet_pki_cert_info {
  char cn[DFNET_PKI_NAME_MAX + 1]; /* subject CN ("" when absent or over 64 bytes) */
  char ou[DFNET_PKI_NAME_MAX + 1]; /* subject OU as written ("" when absent) */
  dfnet_pki_role_t role;           /* OU parsed as a role; NONE when it is not one */
  char issuer_cn[DFNET_PKI_NAME_MAX + 1];
  char serial_hex[41];                      /* serial number, lower-case hex */
  time_t not_before;                        /* UTC seconds */
  time_t not_after;                         /* UTC seconds */
  bool is_ca;                               /* basicConstraints CA:true */
  size_t san_count;                         /* entries in sans[] */
  bool sans_truncated;                      /* the certificate had more than DFNET_PKI_MAX_SANS
                                               DNS/IP entries, or one too long (skipped) */
  dfnet_pki_san_t sans[DFNET_PKI_MAX_SANS]; /* in certificate order; other SAN types are
                                               skipped */
} dfnet_pki_cert_info_t;

/* Fill *info from the (first) certificate. Errors: INVALID_ARGUMENT (NULL), and
 * INVALID_ARGUMENT when the subjectAltName extension is malformed (logged). */
dfnet_status_t dfnet_pki_cert_info(const dfnet_pki_cert_t *cert, dfnet_pki_cert_info_t *info);

/* Does the certificate name `host`? An IP literal matches an iPAddress SAN of the same
 * address (RFC 6125 §6.2.1 / RFC 5280 §4.2.1.6); anything else matches a dNSName SAN
 * case-insensitively (a "*." wildcard covers one leftmost label), or the CN when the
 * certificate has no subjectAltName at all. For a transport that turns off the TLS
 * library's own hostname check: mbedTLS 2.28 compares only dNSName entries, so a client
 * connecting to "127.0.0.1" would never match an iPAddress SAN there. Logs nothing;
 * false for NULL. */
bool dfnet_pki_cert_matches_host(const dfnet_pki_cert_t *cert, const char *host);

/* The same check on a certificate mbedTLS already parsed (the peer's, from a TLS session:
 * lib/transport_peer.c), so that dfnet has one hostname check. false for NULL. */
bool dfnet_pki_x509_matches_host(const mbedtls_x509_crt *crt, const char *host);

/* The certificate's DER bytes (borrowed; valid while cert lives). */
const uint8_t *dfnet_pki_cert_der(const dfnet_pki_cert_t *cert, size_t *len_out);

/* ---- The manager's state directory -------------------------------------------------- */

/* File names inside the state directory. */
#define DFNET_PKI_CA_CERT_FILE "ca.crt"           /* 0644 */
#define DFNET_PKI_CA_KEY_FILE "ca.key"            /* 0600 */
#define DFNET_PKI_MANAGER_CERT_FILE "manager.crt" /* 0644 */
#define DFNET_PKI_MANAGER_KEY_FILE "manager.key"  /* 0600 */
#define DFNET_PKI_MANAGER_PEM_FILE "manager.pem"  /* 0600: manager.crt + manager.key */

/* `dfnet-manager init`: make the state directory's PKI if it is not there yet.
 *   <dir>/ca.crt, ca.key          the CA, CN "dfnet CA <manager_name>"
 *   <dir>/manager.crt, .key, .pem the manager's server certificate: CN = manager_name,
 *                                 OU = "manager", SANs localhost, 127.0.0.1, ::1 and the
 *                                 caller's, DFNET_PKI_MANAGER_DAYS days.
 * dir and any missing parent are created (mode 0700). Idempotent: a complete
 * set is loaded and checked (key matches certificate, manager certificate issued by the
 * CA) and left untouched — existing files are never rewritten. The manager set is made
 * only when none of its three files exists.
 * created_out (optional): true when anything was written.
 * Errors: INVALID_ARGUMENT (NULL dir, bad manager_name or SANs, more than
 * DFNET_PKI_MAX_SANS - 3 SANs), FAILED_PRECONDITION (a partial set, e.g. ca.crt without
 * ca.key; a key that does not match; manager.crt not issued by this CA), and the load /
 * write errors above. On error nothing already on disk is removed. */
dfnet_status_t dfnet_pki_init_state_dir(const char *dir, const char *manager_name,
                                        const char *const *sans, size_t san_count,
                                        bool *created_out);

/* `dfnet-manager issue`: issue a certificate from the state directory's CA and write
 *   <out_dir>/<name>.crt (0644), <name>.key (0600), <name>.pem (0600, cert + key),
 *   <out_dir>/ca.crt (0644, a copy of the CA certificate, for the peer to trust).
 * role: HOST, ADMIN, OPERATOR or VIEWER (MANAGER only comes from init). days: validity,
 * 1..DFNET_PKI_MAX_DAYS (clamped to the CA's end). out_dir and any missing parent are
 * created (0700). Nothing is overwritten: if <name>.crt, .key or .pem
 * exists, or a different ca.crt, the call fails before writing anything.
 * Errors: INVALID_ARGUMENT (NULL, bad role/name/SANs/days), NOT_FOUND (state_dir's
 * ca.crt or ca.key missing: run init first), FAILED_PRECONDITION (CA key does not match),
 * ALREADY_EXISTS, and the load / write errors above. */
dfnet_status_t dfnet_pki_issue_to_dir(const char *state_dir, dfnet_pki_role_t role,
                                      const char *name, const char *out_dir,
                                      const char *const *sans, size_t san_count, unsigned days);

/* ---- Secrets and pins (issue 23: join tokens, enrollment) ------------------------------ */

/* Fill out[0..len) with random bytes from mbedTLS's CTR-DRBG, seeded from its entropy
 * sources for this call (lib/pki_random.c). For secrets: token ids and secrets. Errors:
 * INVALID_ARGUMENT (out NULL with len > 0), INTERNAL (entropy or DRBG failure: logged;
 * out is zeroed). Any thread. */
dfnet_status_t dfnet_pki_random(uint8_t *out, size_t len);

/* "sha256:" + 64 lower-case hex digits + NUL. */
#define DFNET_PKI_PIN_TEXT_SIZE 72

/* The SHA-256 of the certificate's SubjectPublicKeyInfo DER (RFC 5280 §4.1.2.7) into
 * out: the CA pin of `dfnet-host join --ca-pin` (lib/pki_pin.c). Errors: INVALID_ARGUMENT
 * (NULL), INTERNAL (mbedTLS could not write or hash the key: logged). Any thread. */
dfnet_status_t dfnet_pki_cert_spki_sha256(const dfnet_pki_cert_t *cert, uint8_t out[32]);

/* The pin's text, "sha256:<64 hex>", into out. Any thread. */
void dfnet_pki_pin_format(const uint8_t sha256[32], char out[DFNET_PKI_PIN_TEXT_SIZE]);

/* Parse a pin's text, "sha256:" + 64 hex digits (either case), into out. Errors:
 * INVALID_ARGUMENT (NULL, another prefix, another length, not hex). Any thread. */
dfnet_status_t dfnet_pki_pin_parse(const char *text, uint8_t out[32]);

/* ---- Enrollment: keys and CSRs (issue 23 item 2; lib/pki_csr.c) ------------------------- */

/* A new ECDSA P-256 key (mbedTLS's CTR-DRBG). *out: free with dfnet_pki_key_free. Errors:
 * INVALID_ARGUMENT (out NULL), INTERNAL (RNG, memory). Any thread. */
dfnet_status_t dfnet_pki_key_generate(dfnet_pki_key_t **out);

/* A parsed PKCS#10 certificate signing request (RFC 2986) whose own signature verified.
 * Opaque; free with dfnet_pki_csr_free (NULL is a no-op). */
typedef struct dfnet_pki_csr dfnet_pki_csr_t;
void dfnet_pki_csr_free(dfnet_pki_csr_t *csr);

/* The requester's side: a new P-256 key (*key_out, never leaves the caller) and a CSR for it,
 * subject CN=name,O=dfnet, signed with it (SHA-256), as DER in a new buffer (*der_out,
 * *len_out; the caller frees it with free()). Errors: INVALID_ARGUMENT (NULL, not a dfnet
 * name), INTERNAL (RNG, mbedTLS writer). On error the outputs are NULL/0. Any thread. */
dfnet_status_t dfnet_pki_csr_create(const char *name, dfnet_pki_key_t **key_out, uint8_t **der_out,
                                    size_t *len_out);

/* The CA's side: parse a CSR (DER, len bytes; copied) and check it: an ECDSA P-256 key,
 * SHA-256, and its own signature over the request verifies with that key (proof that the
 * requester holds the key; mbedTLS's parser does not check it). Errors (logged once):
 * INVALID_ARGUMENT (NULL, unparsable, another key type or digest), UNAUTHENTICATED (the
 * signature does not verify), INTERNAL (memory). Any thread. */
dfnet_status_t dfnet_pki_csr_parse(const uint8_t *der, size_t len, dfnet_pki_csr_t **out);

/* The CSR subject's CN into out ("" when absent or over 64 bytes). */
void dfnet_pki_csr_name(const dfnet_pki_csr_t *csr, char out[DFNET_PKI_NAME_MAX + 1]);

/* dfnet_pki_leaf_issue for the CSR's public key instead of a new key: the subject, role,
 * SANs and validity are params' (the CSR's own subject is not copied: the CA decides).
 * Errors as dfnet_pki_leaf_issue, and INVALID_ARGUMENT for a NULL csr. */
dfnet_status_t dfnet_pki_leaf_issue_csr(const dfnet_pki_cert_t *ca_cert,
                                        const dfnet_pki_key_t *ca_key,
                                        const dfnet_pki_leaf_params_t *params,
                                        const dfnet_pki_csr_t *csr, dfnet_pki_cert_t **cert_out);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_LIB_PKI_H */
