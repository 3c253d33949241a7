/* buffer_ring.c: the provided-buffer ring (io_uring_register_buf_ring, Linux 5.19): which
 * buffers of the pool sit on the ring, provide_buffers() and recycle_buffer(). See
 * io_uring_reactor.c for why only a hot part of the pool is on the ring. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reactors/common/plugin_util.h"
#include "reactors/io_uring/io_uring_internal.h"
#include "runtime/hot_path.h"

#define UR_MAX_BUFFERS 32768u /* a buffer ring holds at most 32768 entries */
_Static_assert(BRRR_MAX_PROVIDED_BUFFERS <= UR_MAX_BUFFERS, "a pool must fit the buffer ring");
#define UR_RING_MIN 64u       /* buffers on the ring at least (if the pool has them) */
#define UR_RING_PER_RECV 4u   /* ... and this many per armed buffer-select receive */

BRRR_HOT_PATH void ur_ring_top_up(brrr_reactor* r) {
  uint32_t want = UR_RING_MIN;
  if (r->select_recvs > want / UR_RING_PER_RECV) want = r->select_recvs * UR_RING_PER_RECV;
  if (want > r->buf_count) want = r->buf_count;
  int added = 0;
  while (r->on_ring < want && r->spare_count > 0) {
    uint32_t id = r->spare[--r->spare_count];
    uint16_t position = (uint16_t)(r->ring_tail + added);
    r->ring_ids[position & r->br_mask] = (uint16_t)id;
    r->ring_pos[id] = position;
    io_uring_buf_ring_add(r->br, r->buf_base + (size_t)id * r->buf_size, r->buf_size,
                          (unsigned short)id, (int)r->br_mask, added++);
    r->on_ring++;
  }
  if (added > 0) {
    io_uring_buf_ring_advance(r->br, added);
    r->ring_tail = (uint16_t)(r->ring_tail + added);
  }
}

/* The kernel takes a bundle's buffers from the ring's head in order, so they are the entries
 * after the first one's. Those entries are rewritten only once the ring has wrapped past
 * them, which needs more additions than there are buffers (the ring has twice as many
 * entries as the pool, and a buffer is added again only after its CQE is seen). */
BRRR_HOT_PATH uint32_t ur_ring_id_after(const brrr_reactor* r, uint32_t first, uint32_t offset) {
  uint16_t position = (uint16_t)(r->ring_pos[first] + offset);
  uint32_t id = r->ring_ids[position & r->br_mask];
  if (r->ring_ids[r->ring_pos[first] & r->br_mask] != first || r->ring_pos[id] != position) {
    pu_abort("io_uring bundle: ring entry %u after buffer %u was reused before its CQE",
             offset, first);
  }
  return id;
}

void ur_buffer_returned(brrr_reactor* r, uint32_t id) {
  r->spare[r->spare_count++] = id;
  ur_ring_top_up(r);
}

/* Registers `entries` ring entries at mem as buffer group UR_BGID. 0 or -errno. */
static int register_buf_ring(brrr_reactor* r, void* mem, uint32_t entries) {
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)mem;
  reg.ring_entries = entries;
  reg.bgid = UR_BGID;
  return io_uring_register_buf_ring(&r->ring, &reg, 0);
}

int ur_buf_ring_supported(brrr_reactor* r) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void* mem = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1; /* cannot tell: provide_buffers() will say */
  int rc = register_buf_ring(r, mem, 8);
  if (rc == 0) io_uring_unregister_buf_ring(&r->ring, UR_BGID);
  munmap(mem, page);
  /* An unknown register opcode is -EINVAL; anything else (-ENOMEM under RLIMIT_MEMLOCK
   * pressure...) is not "unsupported", and provide_buffers() will report it. */
  return rc != -EINVAL;
}

int ur_provide_buffers(brrr_reactor* r, void* base, uint32_t size, uint32_t count) {
  if (!r->buf_ring_ok) return -ENOTSUP;
  if (r->buf_count != 0) return -EEXIST;
  if (base == NULL || size == 0 || count == 0 || count > BRRR_MAX_PROVIDED_BUFFERS) return -EINVAL;
  /* Twice the pool (see ur_ring_id_after), within the kernel's limit. */
  uint32_t entries = 1;
  while (entries < 2 * count && entries < UR_MAX_BUFFERS) entries <<= 1;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t bytes = (entries * sizeof(struct io_uring_buf) + page - 1) / page * page;
  void* mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -ENOMEM;
  uint8_t* out = calloc(count, 1);
  uint32_t* spare = malloc(count * sizeof *spare);
  uint16_t* ring_ids = calloc(entries, sizeof *ring_ids);
  uint16_t* ring_pos = calloc(count, sizeof *ring_pos);
  brrr_completion* pending = malloc(count * sizeof *pending);
  int rc = out == NULL || spare == NULL || ring_ids == NULL || ring_pos == NULL ||
                   pending == NULL
               ? -ENOMEM
               : 0;
  if (rc == 0) {
    r->counters.syscalls++;
    rc = register_buf_ring(r, mem, entries);
  }
  if (rc != 0) {
    free(out);
    free(spare);
    free(ring_ids);
    free(ring_pos);
    free(pending);
    munmap(mem, bytes);
    if (rc == -EINVAL) { /* valid arguments: the kernel has no buffer rings */
      r->buf_ring_ok = 0;
      return -ENOTSUP;
    }
    return rc;
  }
  r->br = mem;
  r->br_bytes = bytes;
  r->br_mask = (uint32_t)io_uring_buf_ring_mask(entries);
  r->buf_base = base;
  r->buf_size = size;
  r->buf_count = count;
  r->buf_out = out;
  r->spare = spare;
  r->ring_ids = ring_ids;
  r->ring_pos = ring_pos;
  r->ring_tail = 0;
  r->pending = pending;
  for (uint32_t i = 0; i < count; i++) spare[i] = count - 1 - i; /* id 0 on top */
  r->spare_count = count;
  r->on_ring = 0;
  io_uring_buf_ring_init(r->br);
  ur_ring_top_up(r);
  return 0;
}

BRRR_HOT_PATH void ur_recycle_buffer(brrr_reactor* r, uint32_t buffer_id) {
  if (buffer_id >= r->buf_count || !r->buf_out[buffer_id]) {
    pu_abort("recycle_buffer(%u) of a buffer the runtime does not own", buffer_id);
  }
  r->buf_out[buffer_id] = 0;
  ur_buffer_returned(r, buffer_id);
}
