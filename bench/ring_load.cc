#include "bench/ring_load.h"

#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/load_parts.h"

namespace brrr::bench {
namespace {

// user_data of a thread's requests: the connection's index in its thread (low 32 bits) and
// the operation (bit 32).
constexpr uint64_t kSendBit = uint64_t{1} << 32;
constexpr unsigned kBufferGroup = 0;
constexpr size_t kMaxBufferBytes = 32 << 20;

// Flags for a spinning ring that one thread uses for life (Linux 6.1); without them where the
// kernel lacks them.
constexpr unsigned kPreferredFlags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

// A thread's io_uring: set up on the thread that uses it (SINGLE_ISSUER makes the creator its
// only submitter), torn down with it, which cancels what is still armed.
class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    if (ready_) io_uring_queue_exit(&ring_);
  }

  absl::Status init(unsigned entries) {
    int rc = -EINVAL;
    for (unsigned flags : {kPreferredFlags, 0u}) {  // EINVAL: a kernel before 6.1
      io_uring_params p{};
      p.flags = flags | IORING_SETUP_CQSIZE;
      p.cq_entries = std::min(entries * 4, 65536u);
      rc = io_uring_queue_init_params(entries, &ring_, &p);
      if (rc != -EINVAL) break;
    }
    if (rc < 0) return absl::UnavailableError(absl::StrCat("io_uring_queue_init: ", std::strerror(-rc)));
    ready_ = true;
    return absl::OkStatus();
  }

  io_uring* get() { return &ring_; }

  // A free submission entry; submits the queued ones first when the queue is full.
  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

 private:
  io_uring ring_{};
  bool ready_ = false;
};

// The provided buffers a thread's receives take from (Linux 5.19): `count` buffers of `size`
// bytes on a buffer ring, each given back once its completion has been read.
class BufferRing {
 public:
  BufferRing() = default;
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;
  ~BufferRing() {
    if (entries_ != nullptr) ::munmap(entries_, entries_bytes_);
  }

  // `count` is a power of two, at most 32768. The ring must outlive the registration: the
  // owner destroys the io_uring first.
  absl::Status attach(io_uring* ring, unsigned count, size_t size) {
    size_ = size;
    mask_ = io_uring_buf_ring_mask(count);
    entries_bytes_ = count * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, entries_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return absl::ResourceExhaustedError(absl::StrCat("mmap: ", std::strerror(errno)));
    entries_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(entries_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(mem);
    reg.ring_entries = count;
    reg.bgid = kBufferGroup;
    if (int rc = io_uring_register_buf_ring(ring, &reg, 0); rc < 0) {
      return absl::UnavailableError(absl::StrCat("io_uring_register_buf_ring: ", std::strerror(-rc)));
    }
    memory_ = std::make_unique<char[]>(count * size);
    for (unsigned id = 0; id < count; ++id) give_back(static_cast<uint16_t>(id));
    publish();
    return absl::OkStatus();
  }

  const char* data(uint16_t id) const { return at(id); }
  // Puts buffer `id` back on the ring; the kernel sees it after publish().
  void give_back(uint16_t id) {
    io_uring_buf_ring_add(entries_, at(id), static_cast<unsigned>(size_), id, mask_, pending_++);
  }
  void publish() {
    if (pending_ == 0) return;
    io_uring_buf_ring_advance(entries_, pending_);
    pending_ = 0;
  }

 private:
  char* at(uint16_t id) const { return memory_.get() + size_t{id} * size_; }

  io_uring_buf_ring* entries_ = nullptr;
  size_t entries_bytes_ = 0;
  std::unique_ptr<char[]> memory_;
  size_t size_ = 0;
  int mask_ = 0;
  int pending_ = 0;
};

// One connection of a ring thread: a multishot receive armed on its socket, at most one send
// in flight (MSG_WAITALL: it completes when the kernel took the whole batch, or fails). Owned
// and run by one thread.
class RingConnection : public SpinningConnection {
 public:
  RingConnection(const LoadOptions& o, Shared& shared, Counters& counters, int id, int& open)
      : SpinningConnection(o, shared, counters, id), open_(open) {}

  void arm_receive(Ring& ring, uint32_t index) {
    io_uring_sqe* sqe = ring.next_sqe();
    io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, index);
  }

  // Queues a send of what the window has room for, or of the rest of a batch; once
  // `stopping` and all is sent, half-closes instead. Nothing while a send is in flight.
  void send(Ring& ring, uint32_t index, bool stopping) {
    if (done_ || sending_) return;
    if (window_.refill(o_, echo_, stopping)) {
      io_uring_sqe* sqe = ring.next_sqe();
      io_uring_prep_send(sqe, fd_, shared_.pattern.at(id_, window_.unsent_from), window_.unsent,
                         MSG_WAITALL | MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, kSendBit | index);
      sending_ = true;
    } else if (stopping && !write_shut_) {
      half_close();
    }
  }

  // A send completed: `result` bytes taken, or -errno.
  void sent(int result) {
    sending_ = false;
    if (done_) return;
    if (result < 0) return fail(std::strerror(-result));
    counters_.bytes_sent.add(static_cast<uint64_t>(result));
    window_.took(static_cast<size_t>(result));
  }

  // A receive completed with `result` bytes in buffer `data` (or 0: the end of stream; or
  // -errno). Checks and counts what came back. True if the receive must be armed again.
  bool received(int result, const char* data, bool more) {
    if (done_) return false;
    if (result > 0) return take(data, static_cast<size_t>(result)) && !more;
    if (result == 0) {
      end_of_stream();
      return false;
    }
    if (result == -ENOBUFS) return true;  // every buffer was taken: armed again once they are back
    fail(absl::StrCat("receive: ", std::strerror(-result)));
    return false;
  }

  // Ends the connection before it was opened (its thread could not set up its ring): lost.
  void give_up(const std::string& why) {
    done_ = true;
    counters_.lost.add(1);
    counters_.finished.add(1);
    shared_.error(why);
    on_done();
  }

 private:
  void on_done() override { --open_; }

  int& open_;  // the thread's count of connections not done
  bool sending_ = false;
};

unsigned PowerOfTwoAtLeast(size_t n) {
  unsigned p = 1;
  while (p < n) p <<= 1;
  return p;
}

// One ring thread: its connections, their ring and buffers, and the passes over them. In each
// pass the connections whose echo (or send) completed queue their next send, one
// io_uring_enter submits them and runs what completed (never waiting), and the completions are
// taken. It ends when every connection is done.
class RingThread {
 public:
  RingThread(const LoadOptions& o, Shared& shared, Counters& counters, std::vector<int> ids)
      : o_(o), shared_(shared), open_(static_cast<int>(ids.size())) {
    for (int id : ids) connections_.push_back(std::make_unique<RingConnection>(o, shared, counters, id, open_));
    queued_.assign(connections_.size(), false);
  }

  void run() {
    if (absl::Status s = set_up(); !s.ok()) {
      for (auto& c : connections_) c->give_up(absl::StrCat("--busy_ring: ", s.message()));
      return;
    }
    for (uint32_t i = 0; i < connections_.size(); ++i) {
      if (!connections_[i]->connect()) continue;
      connections_[i]->arm_receive(ring_, i);
      visit(i);
    }
    bool stop_seen = false;
    while (open_ > 0) {
      bool stopping = shared_.stop.load(std::memory_order_relaxed);
      if (stopping && !stop_seen) {
        stop_seen = true;
        for (uint32_t i = 0; i < connections_.size(); ++i) visit(i);  // each half-closes
      }
      if (stopping && shared_.abort.load(std::memory_order_relaxed)) {
        for (auto& c : connections_) c->abort();
        break;
      }
      for (uint32_t i : to_visit_) {
        queued_[i] = false;
        connections_[i]->send(ring_, i, stopping);
      }
      to_visit_.clear();
      io_uring_submit_and_get_events(ring_.get());
      take_completions();
    }
  }

 private:
  absl::Status set_up() {
    size_t n = connections_.size();
    if (absl::Status s = ring_.init(std::clamp(PowerOfTwoAtLeast(2 * n), 64u, 4096u)); !s.ok()) return s;
    // Four buffers per connection, at least 64, and at most 32 MiB of them (but 16).
    size_t size = ReceiveBufferSize(o_.size);
    unsigned count = std::clamp(PowerOfTwoAtLeast(4 * n), 64u, 32768u);
    while (count > 16 && count * size > kMaxBufferBytes) count /= 2;
    return buffers_.attach(ring_.get(), count, size);
  }

  void visit(uint32_t i) {
    if (queued_[i]) return;
    queued_[i] = true;
    to_visit_.push_back(i);
  }

  void take_completions() {
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
      ++seen;
      uint32_t i = static_cast<uint32_t>(cqe->user_data);
      RingConnection& c = *connections_[i];
      if (cqe->user_data & kSendBit) {
        c.sent(cqe->res);
        visit(i);  // the rest of the batch, the next one, or the half-close
        continue;
      }
      const char* data = nullptr;
      uint16_t buffer = 0;
      bool has_buffer = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
      if (has_buffer) {
        buffer = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        data = buffers_.data(buffer);
      }
      if (c.received(cqe->res, data, (cqe->flags & IORING_CQE_F_MORE) != 0)) c.arm_receive(ring_, i);
      if (has_buffer) buffers_.give_back(buffer);
      if (cqe->res > 0) visit(i);  // messages may have come back whole: room in the window
    }
    io_uring_cq_advance(ring_.get(), seen);
    buffers_.publish();
  }

  const LoadOptions& o_;
  Shared& shared_;
  int open_;
  std::vector<std::unique_ptr<RingConnection>> connections_;
  std::vector<uint32_t> to_visit_;  // connections to call send() on in the next pass
  std::vector<bool> queued_;        // by index: in to_visit_
  BufferRing buffers_;              // declared before ring_: outlives it
  Ring ring_;
};

// Whether this kernel lets the process use io_uring with provided-buffer rings at all.
absl::Status ProbeRing() {
  BufferRing buffers;  // declared before ring: it outlives the registration
  Ring ring;
  if (absl::Status s = ring.init(8); !s.ok()) return s;
  return buffers.attach(ring.get(), 8, 64);
}

}  // namespace

absl::StatusOr<LoadResult> RunRingLoad(const LoadOptions& o,
                                       const std::function<void(const LoadProgress&)>& on_progress) {
  if (absl::Status s = ProbeRing(); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--busy_ring needs io_uring with provided-buffer rings (Linux 6.0): ", s.message(),
        "; --busy_poll measures without it"));
  }
  SpinningRun run(o);
  std::vector<std::vector<int>> ids(static_cast<size_t>(o.threads));
  for (int i = 0; i < o.connections; ++i) {
    run.expect(i);
    ids[static_cast<size_t>(i % o.threads)].push_back(i);
  }
  std::vector<std::unique_ptr<RingThread>> engines;
  for (size_t t = 0; t < ids.size(); ++t) {
    engines.push_back(std::make_unique<RingThread>(o, run.shared(), run.counters(t), std::move(ids[t])));
  }
  return run.Run([&](size_t t) { engines[t]->run(); }, "--busy_ring", "busy-ring", on_progress);
}

}  // namespace brrr::bench
