// SPDX-License-Identifier: MIT
/* minidebug.c - bounded xz decompression of .gnu_debugdata (liblzma). */
#include "symbolize/minidebug.h"

#include <errno.h>
#include <lzma.h>
#include <stdint.h>
#include <stdlib.h>

/* The decoder's own memory bound (dictionary and state): xz -9 needs 65 MiB
 * to decompress; MiniDebugInfo is made with the defaults (-6: 9 MiB). */
#define MINIDEBUG_DECODER_MEMLIMIT (96ull << 20)

int minidebug__decompress(const void *xz, size_t size, size_t max_out, void **out,
			  size_t *out_size)
{
	lzma_stream strm = LZMA_STREAM_INIT;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int err = 0;

	if (!xz || size == 0 || !out || !out_size)
		return -EINVAL;
	if (max_out == 0)
		max_out = MINIDEBUG_MAX_BYTES;
	if (lzma_stream_decoder(&strm, MINIDEBUG_DECODER_MEMLIMIT, 0) != LZMA_OK)
		return -ENOMEM;
	strm.next_in = xz;
	strm.avail_in = size;
	for (;;) {
		if (strm.avail_out == 0) {
			if (cap >= max_out) {
				err = -EFBIG;
				goto out;
			}
			size_t grown = cap ? cap * 2 : (size * 4 < 65536 ? 65536 : size * 4);

			if (grown > max_out)
				grown = max_out;
			uint8_t *bigger = realloc(buf, grown);

			if (!bigger) {
				err = -ENOMEM;
				goto out;
			}
			buf = bigger;
			strm.next_out = buf + cap;
			strm.avail_out = grown - cap;
			cap = grown;
		}
		lzma_ret ret = lzma_code(&strm, LZMA_FINISH);

		if (ret == LZMA_STREAM_END)
			break;
		if (ret == LZMA_OK)
			continue;
		err = ret == LZMA_MEM_ERROR ? -ENOMEM : ret == LZMA_MEMLIMIT_ERROR ? -EFBIG : -EINVAL;
		goto out;
	}
	if (strm.avail_in != 0 || strm.total_out == 0) {
		err = -EINVAL; /* trailing bytes, or an empty stream: not one ELF file */
		goto out;
	}
	*out = buf;
	*out_size = (size_t)strm.total_out;
	buf = NULL;
out:
	free(buf);
	lzma_end(&strm);
	return err;
}
