/* protobuf.h - the small part of the protobuf wire format that pprof needs.
 *
 * Writing appends to a struct strbuf: varints, length-delimited bytes, packed
 * repeated varints and nested messages (pb__begin_message/pb__end_message patch
 * the length in place, so no scratch buffer per message is needed). Writers
 * follow strbuf's sticky-failure rule: check strbuf__error() once at the end.
 *
 * Reading iterates the fields of one message held in memory. Every length is
 * checked against the end of the enclosing buffer, so malformed or truncated
 * input yields -EINVAL and never a read out of bounds. Group wire types (3, 4)
 * are rejected; pprof never uses them.
 */
#ifndef DYNOPROF_PROTOBUF_H
#define DYNOPROF_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* Wire types of a field key's low 3 bits. */
enum pb_wire_type {
	PB_WIRE_VARINT = 0,  /* int32/64, uint32/64, bool, enum */
	PB_WIRE_FIXED64 = 1, /* fixed64, sfixed64, double */
	PB_WIRE_LEN = 2,     /* string, bytes, message, packed repeated */
	PB_WIRE_FIXED32 = 5, /* fixed32, sfixed32, float */
};

/* Longest varint encoding (a 64-bit value in 7-bit groups). */
#define PB_MAX_VARINT_LEN 10

/* Largest field number protobuf allows (2^29 - 1). */
#define PB_MAX_FIELD_NUMBER 536870911u

/* Appends v as a varint. */
void pb__put_varint(struct strbuf *sb, uint64_t v);

/* Appends the key (tag) of field `field` with wire type `wire`. */
void pb__put_key(struct strbuf *sb, uint32_t field, enum pb_wire_type wire);

/* Appends field `field` as a varint, even when v is 0 (callers that want
 * proto3's "omit defaults" test for 0 themselves). */
void pb__put_varint_field(struct strbuf *sb, uint32_t field, uint64_t v);

/* Appends field `field` as length-delimited bytes (string, bytes). data may be
 * NULL when len is 0. */
void pb__put_bytes_field(struct strbuf *sb, uint32_t field, const void *data, size_t len);

/* Appends a packed repeated varint field holding values[0..count). Nothing is
 * written when count is 0 (an empty packed field and an absent one are equal). */
void pb__put_packed_varints(struct strbuf *sb, uint32_t field, const uint64_t *values,
			    size_t count);

/* Starts a nested message in field `field`: writes its key and a placeholder
 * length. Returns the mark to pass to pb__end_message(); nest freely, closing
 * in reverse order. */
size_t pb__begin_message(struct strbuf *sb, uint32_t field);

/* Ends the message begun at mark: stores its length, moving the body when the
 * length needs more than one byte. A no-op on a failed buffer. */
void pb__end_message(struct strbuf *sb, size_t mark);

/* A cursor over the encoded bytes of one message (or of a packed field). It
 * borrows the bytes; they must outlive it. */
struct pb_reader {
	const uint8_t *pos; /* next unread byte */
	const uint8_t *end; /* one past the last byte of the message */
};

/* One decoded field. data points into the reader's buffer. */
struct pb_field {
	uint32_t number;          /* field number, 1..PB_MAX_FIELD_NUMBER */
	enum pb_wire_type wire;   /* wire type */
	uint64_t value;           /* decoded value for VARINT/FIXED64/FIXED32; length for LEN */
	const uint8_t *data;      /* LEN: the payload; VARINT: the varint's own bytes */
	size_t len;               /* bytes at data (for FIXED*: 0) */
};

/* Points r at data[0..len). data may be NULL when len is 0. */
void pb__reader_init(struct pb_reader *r, const void *data, size_t len);

/* Returns nonzero while unread bytes remain. */
int pb__reader_more(const struct pb_reader *r);

/* Reads one varint at r. Returns 0 with *v set, or -EINVAL when it is
 * truncated or longer than PB_MAX_VARINT_LEN / 64 bits. */
int pb__read_varint(struct pb_reader *r, uint64_t *v);

/* Reads the next field. Returns 1 with *f filled, 0 at the end of the message,
 * or -EINVAL for a malformed key (field number 0 or too large, group or unknown
 * wire type) or a truncated value. Unknown fields are the caller's to skip:
 * simply ask for the next one. */
int pb__next_field(struct pb_reader *r, struct pb_field *f);

/* For a repeated varint field, which encoders may write packed (LEN) or one
 * value per field (VARINT): points values at the field's varints, to be read
 * with pb__read_varint() while pb__reader_more(). Returns 0, or -EINVAL for
 * any other wire type. */
int pb__field_varints(const struct pb_field *f, struct pb_reader *values);

#endif
