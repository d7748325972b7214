/* fuzz_idx.c - libFuzzer target: bytes as an IDX file, raw or gzip.
 * The reader works on a file descriptor (zlib's gzdopen), so each input
 * is written to one reused temporary file first. */
#include "data/data.h"

#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *tmp;
    if (!tmp && !(tmp = tmpfile())) abort();
    int fd = fileno(tmp);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    int dup_fd = dup(fd); /* cg_idx_read_fd closes the one it is given */
    if (dup_fd < 0 || lseek(dup_fd, 0, SEEK_SET) != 0) abort();
    cg_idx idx;
    if (cg_idx_read_fd(dup_fd, "fuzz.idx", &idx) == CG_OK) {
        int64_t expect = idx.dims[0] * idx.dims[1] * idx.dims[2];
        if (idx.size != expect) abort(); /* the payload is exactly what the dims say */
        unsigned sum = 0;
        for (int64_t i = 0; i < idx.size; i++) sum += idx.data[i];
        (void)sum;
        cg_idx_free(&idx);
    }
    return 0;
}
