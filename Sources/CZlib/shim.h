#include <zlib.h>

/* deflateInit2 and inflateInit2 are macros; Swift cannot call them. */
static inline int migsnap_deflateInit2(z_streamp strm, int level) {
    /* windowBits 15 + 16: write a gzip header and trailer, so the file is plain gzip. */
    return deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

static inline int migsnap_inflateInit2(z_streamp strm) {
    /* windowBits 15 + 16: accept gzip only, so a raw zlib or foreign stream is an error. */
    return inflateInit2(strm, 15 + 16);
}
