/*
 * memory.c - the memory a request may still take (see memory.h).
 */
#include "util/memory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* The named field of /proc/meminfo-style text ("MemAvailable:  123 kB"), in
 * bytes; false if absent. */
static bool meminfo_field(const char *path, const char *field, uint64_t *bytes) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[256];
    bool found = false;
    size_t len = strlen(field);
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (strncmp(line, field, len) == 0 && line[len] == ':' &&
            sscanf(line + len + 1, "%llu", &kb) == 1) {
            *bytes = (uint64_t)kb * 1024u;
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* A file holding one number ("max" reads as none); false if absent. */
static bool number_file(const char *path, uint64_t *value) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    unsigned long long v;
    bool ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    if (ok) *value = (uint64_t)v;
    return ok;
}

/* "512M", "2G", "1000000": bytes; 0 if not a size. */
static uint64_t parse_size(const char *s) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return 0;
    int shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default: break;
    }
    if (*end == 'B' || *end == 'b') end++;
    if (*end != '\0' || v > (UINT64_MAX >> shift)) return 0;
    return (uint64_t)v << shift;
}

/* The limit and, for the message, where it comes from. */
static uint64_t available(const char **source) {
    uint64_t best = UINT64_MAX, v;
    *source = "nothing limits it";
    const char *env = getenv("CGRAD_MEMORY_LIMIT");
    if (env && *env && (v = parse_size(env)) > 0) {
        best = v;
        *source = "CGRAD_MEMORY_LIMIT";
    }
    if (meminfo_field("/proc/meminfo", "MemAvailable", &v) && v < best) {
        best = v;
        *source = "the memory the system has available";
    }
    /* cgroup v2: this process's group's limit and use. */
    uint64_t max, cur;
    if (number_file("/sys/fs/cgroup/memory.max", &max) &&
        number_file("/sys/fs/cgroup/memory.current", &cur)) {
        v = max > cur ? max - cur : 0;
        if (v < best) {
            best = v;
            *source = "the container's memory limit";
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        uint64_t mapped = 0;
        meminfo_field("/proc/self/status", "VmSize", &mapped);
        v = (uint64_t)rl.rlim_cur > mapped ? (uint64_t)rl.rlim_cur - mapped : 0;
        if (v < best) {
            best = v;
            *source = "the address-space limit (ulimit -v)";
        }
    }
    return best;
}

uint64_t cg_memory_available(void) {
    const char *source;
    return available(&source);
}

cg_status cg_memory_check(const char *op, double bytes, const char *what) {
    const char *source;
    uint64_t have = available(&source);
    if (!(bytes > (double)have)) return CG_OK;
    return cg_fail(CG_ERR_NOMEM, "%s: %s needs %.0f MB, more than the %.0f MB available (%s)", op,
                   what, bytes / 1048576.0, (double)have / 1048576.0, source);
}
