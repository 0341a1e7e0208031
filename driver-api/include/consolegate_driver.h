/*
 * consolegate_driver.h - the stable C ABI between the consolegate proxy and its
 * security drivers.  Mirrors driver-api/src/abi.rs field for field; the test
 * driver-api/tests/layout.rs checks both agree.
 *
 * A driver is a shared library named libconsolegate_<name>.so that exports
 * exactly one symbol:
 *
 *     const cg_driver_descriptor *consolegate_driver_v1(void);
 *
 * The lifecycle, the rules (ownership, errors, NULL, threads, no exception
 * or longjmp across the boundary) and the compatibility policy (what a minor
 * change may do, what bumps CG_ABI_VERSION, what a host does with an older or
 * newer driver) are written once, in docs/ABI.md of the consolegate sources.
 *
 * Fill struct_size with sizeof() of the struct as this header declares it;
 * the CG_*_V1_SIZE macros below are the smallest sizes a reader accepts.
 */
#ifndef CONSOLEGATE_DRIVER_H
#define CONSOLEGATE_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CG_DRIVER_MAGIC 0x43474456u /* "CGDV" */
#define CG_ABI_VERSION 1u
#define CG_DRIVER_SYMBOL "consolegate_driver_v1"

/* Console kinds (bits). */
#define CG_KIND_VNC    (1u << 0)
#define CG_KIND_SPICE  (1u << 1)
#define CG_KIND_SERIAL (1u << 2)

/* Descriptor flags. */
#define CG_DRIVER_FLAG_CLEARTEXT   (1u << 0) /* hypervisor leg stays cleartext: needs connect_insecure */
#define CG_DRIVER_FLAG_PLACEHOLDER (1u << 1) /* cannot complete a session yet: the host warns */

/* Channel interest (bits). */
#define CG_INTEREST_READ  (1u << 0)
#define CG_INTEREST_WRITE (1u << 1)

/* Log levels (match Rust's log::Level). */
#define CG_LOG_ERROR 1u
#define CG_LOG_WARN  2u
#define CG_LOG_INFO  3u
#define CG_LOG_DEBUG 4u
#define CG_LOG_TRACE 5u

/* Result codes: fixed numbers, never reused. */
typedef uint32_t cg_status;
#define CG_OK               0u
#define CG_WOULD_BLOCK      1u
/* 2-9 reserved */
#define CG_INVALID_ARGUMENT 10u
#define CG_CONFIG           11u
#define CG_IO               12u
#define CG_TIMEOUT          13u
#define CG_PROTOCOL         14u
#define CG_TLS              15u
#define CG_AUTH             16u
#define CG_REFUSED          17u
#define CG_UNSUPPORTED      18u
#define CG_CLIENT           19u
#define CG_PANIC            20u
#define CG_INTERNAL         21u

/* Whether the struct at p (of type type, written by the other side) has field:
 * a field past the writer's struct_size is absent and must not be read.  Use it
 * before reading any field added after v1 (see docs/ABI.md). */
#define CG_HAS_FIELD(p, type, field) \
    ((size_t)(p)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* Borrowed UTF-8 string, not NUL-terminated.  ptr == NULL means absent. */
typedef struct cg_str {
    const uint8_t *ptr;
    size_t len;
} cg_str;

/* Caller-owned buffer for an error message; the callee sets len. */
typedef struct cg_error {
    uint8_t *buf;
    size_t cap;
    size_t len;
} cg_error;

/* One key = value of the INI sections the driver asked for. */
typedef struct cg_option {
    cg_str section;
    cg_str key;
    cg_str value;
} cg_option;

typedef void (*cg_log_fn)(void *ctx, uint32_t level, cg_str msg);

/* Host services, valid from init until destroy returns. */
typedef struct cg_host {
    uint32_t struct_size;
    uint32_t abi_version;
    void *log_ctx;
    cg_log_fn log; /* may be NULL; callable from any thread */
} cg_host;
#define CG_HOST_V1_SIZE ((uint32_t)(offsetof(cg_host, log) + sizeof(cg_log_fn)))

/* One session, valid during connect. */
typedef struct cg_session_info {
    uint32_t struct_size;
    uint32_t kind;                 /* one CG_KIND_* bit */
    cg_str host;                   /* hypervisor host, no brackets */
    uint16_t port;
    uint16_t reserved;
    uint32_t handshake_timeout_ms; /* budget for the whole handshake */
    cg_str username;               /* absent if none */
    cg_str password;               /* absent if none; never log it */
    uint64_t session_id;           /* for logs */
} cg_session_info;
#define CG_SESSION_INFO_V1_SIZE ((uint32_t)(offsetof(cg_session_info, session_id) + sizeof(uint64_t)))

/* Blocking byte stream to the browser, valid during connect.  The host frames
 * websocket messages and enforces the handshake deadline. */
typedef struct cg_client_io {
    uint32_t struct_size;
    void *ctx;
    /* Reads up to len bytes, at least 1; *out_n == 0 with CG_OK: client closed. */
    cg_status (*read)(void *ctx, uint8_t *buf, size_t len, size_t *out_n);
    /* Writes all len bytes as one binary websocket message. */
    cg_status (*write)(void *ctx, const uint8_t *buf, size_t len);
} cg_client_io;
#define CG_CLIENT_IO_V1_SIZE \
    ((uint32_t)(offsetof(cg_client_io, write) + sizeof(cg_status (*)(void *, const uint8_t *, size_t))))

/* Non-blocking operations on an established channel.  Every function is
 * required: the host refuses a channel whose vtable has a NULL one. */
typedef struct cg_channel_vtable {
    uint32_t struct_size;
    /* Plaintext from the hypervisor; CG_OK with *out_n == 0 is end of stream. */
    cg_status (*read)(void *state, uint8_t *buf, size_t len, size_t *out_n, cg_error *err);
    /* Plaintext towards the hypervisor; CG_WOULD_BLOCK when full. */
    cg_status (*write)(void *state, const uint8_t *buf, size_t len, size_t *out_n, cg_error *err);
    /* Sends pending output; CG_WOULD_BLOCK while some remains. */
    cg_status (*flush)(void *state, cg_error *err);
    /* CG_INTEREST_* bits. */
    uint32_t (*interest)(const void *state);
    /* Frees the channel; does not close the socket (the host owns it). */
    void (*destroy)(void *state);
} cg_channel_vtable;
#define CG_CHANNEL_VTABLE_V1_SIZE \
    ((uint32_t)(offsetof(cg_channel_vtable, destroy) + sizeof(void (*)(void *))))

/* Not versioned: it never grows (the vtable does). */
typedef struct cg_channel {
    void *state;
    const cg_channel_vtable *vtable;
} cg_channel;

/* Every function is required: the host refuses a descriptor with a NULL one. */
typedef struct cg_driver_descriptor {
    uint32_t magic;           /* CG_DRIVER_MAGIC */
    uint32_t abi_version;     /* CG_ABI_VERSION */
    uint32_t struct_size;     /* sizeof(cg_driver_descriptor) */
    uint32_t kinds;           /* CG_KIND_* bits served */
    uint32_t flags;           /* CG_DRIVER_FLAG_* */
    const char *name;         /* "<name>" of libconsolegate_<name>.so */
    const char *version;
    const char *description;  /* one line */
    const char *option_sections; /* comma-separated INI sections, "" for none */
    cg_status (*init)(const cg_host *host, const cg_option *options, size_t n_options,
                      void **out_handle, cg_error *err);
    /* server_fd: connected TCP socket, blocking, timeouts set; do not close it. */
    cg_status (*connect)(void *handle, const cg_session_info *session,
                         const cg_client_io *client, int server_fd,
                         cg_channel *out_channel, cg_error *err);
    void (*destroy)(void *handle);
} cg_driver_descriptor;
#define CG_DRIVER_DESCRIPTOR_V1_SIZE \
    ((uint32_t)(offsetof(cg_driver_descriptor, destroy) + sizeof(void (*)(void *))))

const cg_driver_descriptor *consolegate_driver_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* CONSOLEGATE_DRIVER_H */
