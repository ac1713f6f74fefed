/*
 * paths.c -- object keys, formatted and parsed (see paths.h).
 */
#include "db/paths.h"

#include <stdio.h>
#include <string.h>

void manifest_key(uint64_t id, char *buf, size_t n)
{
    snprintf(buf, n, PATH_MANIFEST_DIR "%020llu.manifest", (unsigned long long)id);
}

void wal_key(uint64_t id, char *buf, size_t n)
{
    snprintf(buf, n, PATH_WAL_DIR "%020llu.sst", (unsigned long long)id);
}

void sst_key(const char *ulid, char *buf, size_t n)
{
    snprintf(buf, n, PATH_SST_DIR "%s.sst", ulid);
}

void probe_key(const char *id, char *buf, size_t n)
{
    snprintf(buf, n, PATH_PROBE_DIR "%s", id);
}

bool journal_key(const char *name, uint64_t version, char *buf, size_t n)
{
    size_t nl = name ? strlen(name) : 0;
    if (n)
        buf[0] = '\0';
    if (!nl || nl > PATH_JOURNAL_NAME_MAX || strchr(name, '/') || name[0] == '_')
        return false;
    int w = snprintf(buf, n, PATH_JOURNAL_DIR "%s/%020llu.json", name,
                     (unsigned long long)version);
    if (w < 0 || (size_t)w >= n) {
        if (n)
            buf[0] = '\0';
        return false;
    }
    return true;
}

/* Exactly 20 decimal digits at s, fitting in 64 bits. */
static bool parse_20(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* prefix, 20 digits, suffix, end of string. */
static bool parse_id_key(const char *key, const char *prefix, const char *suffix,
                         uint64_t *id)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    uint64_t v;
    if (!key || strlen(key) != pl + 20 + sl || strncmp(key, prefix, pl) ||
        strcmp(key + pl + 20, suffix) || !parse_20(key + pl, &v) || v == 0)
        return false;
    *id = v;
    return true;
}

bool manifest_key_parse(const char *key, uint64_t *id)
{
    return parse_id_key(key, PATH_MANIFEST_DIR, ".manifest", id);
}

bool wal_key_parse(const char *key, uint64_t *id)
{
    return parse_id_key(key, PATH_WAL_DIR, ".sst", id);
}

bool path_ulid_valid(const char *id)
{
    static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (!id || strlen(id) != PATH_ULID_LEN || id[0] > '7')
        return false;
    for (size_t i = 0; i < PATH_ULID_LEN; i++)
        if (!strchr(crockford, id[i]))
            return false;
    return true;
}

bool sst_key_parse(const char *key, char ulid[PATH_ULID_LEN + 1])
{
    size_t pl = sizeof PATH_SST_DIR - 1;
    char id[PATH_ULID_LEN + 1];
    if (!key || strlen(key) != pl + PATH_ULID_LEN + 4 || strncmp(key, PATH_SST_DIR, pl) ||
        strcmp(key + pl + PATH_ULID_LEN, ".sst"))
        return false;
    memcpy(id, key + pl, PATH_ULID_LEN);
    id[PATH_ULID_LEN] = '\0';
    if (!path_ulid_valid(id))
        return false;
    memcpy(ulid, id, sizeof id);
    return true;
}

bool journal_key_parse(const char *key, char *name, size_t nlen, uint64_t *version)
{
    size_t pl = sizeof PATH_JOURNAL_DIR - 1;
    if (!key || strncmp(key, PATH_JOURNAL_DIR, pl))
        return false;
    const char *p = key + pl, *slash = strchr(p, '/');
    if (!slash || slash == p || (size_t)(slash - p) > PATH_JOURNAL_NAME_MAX ||
        (size_t)(slash - p) >= nlen || *p == '_')
        return false;
    const char *v = slash + 1;
    uint64_t x;
    if (strlen(v) != 25 || strcmp(v + 20, ".json") || !parse_20(v, &x))
        return false;
    memcpy(name, p, (size_t)(slash - p));
    name[slash - p] = '\0';
    *version = x;
    return true;
}

void lease_key(uint64_t seq, char *buf, size_t n)
{
    snprintf(buf, n, PATH_LEASE_DIR "%020llu.json", (unsigned long long)seq);
}

bool lease_key_parse(const char *key, uint64_t *seq)
{
    size_t pl = sizeof PATH_LEASE_DIR - 1;
    uint64_t x;
    if (!key || strncmp(key, PATH_LEASE_DIR, pl) || strlen(key + pl) != 25 ||
        strcmp(key + pl + 20, ".json") || !parse_20(key + pl, &x) || !x)
        return false;
    *seq = x;
    return true;
}
