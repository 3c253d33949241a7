// descriptor_budget.h: how many descriptors the echo side may hold at once, so that the rest
// of the process (the admin plane) can always open some: when the echo side has used its
// budget, the loops stop accepting and new clients wait in the kernel's backlog, as they do
// on EMFILE, while descriptors are still free for the operator.
//
//   absl::StatusOr<DescriptorPlan> plan = DescriptorPlan::Measure(/*reserved=*/32);
//   DescriptorBudget budget(plan->for_connections);
//   if (std::optional<DescriptorBudget::Slot> slot = budget.TryTake()) {
//     absl::StatusOr<Socket> conn = co_await listener.accept();
//     if (conn.ok()) slot->HandTo(*conn);  // given back when the socket's descriptor closes
//   }                                       // (a slot never handed over is given back at once)
//
// The budget is RLIMIT_NOFILE (or what the backend can watch, if less: select's 1024), less the
// reserve, less the descriptors open when the server starts (stdio, listeners, backends, the
// admin plane's own): the echo side then holds at most its budget, the rest of the process at
// most what was open at start plus the reserve.
//
// Why count instead of measuring, or holding spare descriptors. Measuring the process's
// descriptors (/proc/self/fd) walks a directory of every open descriptor, too dear before
// each accept; the echo side knows its own exactly, since every accepted socket gives its
// slot back when the descriptor is really closed (Socket::count_descriptor_in; a backend may
// hold a descriptor past close()), and the rest is measured once, at start. nginx's and
// libev's reserve (spare descriptors on /dev/null, closed to make room) frees a descriptor
// for whichever thread opens one next: here the echo loops retry their accepts on their own
// threads and could take it before the admin plane does. A budget keeps the echo side below
// the line instead, and each loop takes its slot before it accepts.
//
// With several loops, each loop waiting for a connection holds a slot: a loop whose listener
// gets no client keeps one descriptor of the budget unused meanwhile.
//
// Threads: any. Ownership: a Slot, and a socket it was handed to, must not outlive the budget.
#ifndef BRRR_SERVER_DESCRIPTOR_BUDGET_H_
#define BRRR_SERVER_DESCRIPTOR_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "runtime/socket.h"

namespace brrr::server {

// The numbers a budget is made from.
struct DescriptorPlan {
  uint64_t limit = 0;            // RLIMIT_NOFILE (soft), or the backend's, if lower
  uint64_t open_at_start = 0;    // descriptors open when measured
  uint64_t reserved = 0;         // kept free for the rest of the process
  uint64_t for_connections = 0;  // limit - open_at_start - reserved
  bool backend_limit = false;    // `limit` is the backend's (select watches descriptors below 1024)

  // Measures now. `max_watchable_fd`: the highest descriptor the echo loops' backend can
  // watch (-1: any): the kernel gives out the lowest free descriptor, so a process that never
  // holds more than max_watchable_fd + 1 at once never gets a higher one, and the budget keeps
  // to that as to RLIMIT_NOFILE. FailedPrecondition if the limit leaves no descriptor for
  // connections (saying the numbers, and to raise `ulimit -n` or lower the reserve); the errno
  // of getrlimit or of reading /proc/self/fd otherwise.
  static absl::StatusOr<DescriptorPlan> Measure(uint64_t reserved, int max_watchable_fd = -1);
};

class DescriptorBudget {
 public:
  static constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

  // A slot for one descriptor; gives it back when destroyed, unless handed to a socket.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : count_(std::exchange(other.count_, nullptr)) {}
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot() {
      if (count_ != nullptr) count_->fetch_sub(1);
    }
    // The socket gives the slot back when its descriptor is closed.
    void HandTo(Socket& socket) {
      if (count_ != nullptr) socket.count_descriptor_in(std::exchange(count_, nullptr));
    }

   private:
    friend class DescriptorBudget;
    explicit Slot(std::atomic<int64_t>* count) : count_(count) {}
    std::atomic<int64_t>* count_;  // null: nothing to give back (unlimited, or handed over)
  };

  explicit DescriptorBudget(int64_t limit = kUnlimited) : limit_(limit) {}
  DescriptorBudget(const DescriptorBudget&) = delete;
  DescriptorBudget& operator=(const DescriptorBudget&) = delete;

  // Before any slot is taken.
  void set_limit(int64_t limit) { limit_ = limit; }
  int64_t limit() const { return limit_; }
  bool limited() const { return limit_ != kUnlimited; }
  // Slots taken and descriptors of sockets still open (0 when unlimited: nothing is counted).
  int64_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

  // A slot, or nullopt when `limit` are taken.
  std::optional<Slot> TryTake() {
    if (!limited()) return Slot(nullptr);
    if (in_use_.fetch_add(1) >= limit_) {
      in_use_.fetch_sub(1);
      return std::nullopt;
    }
    return Slot(&in_use_);
  }

 private:
  int64_t limit_;
  std::atomic<int64_t> in_use_{0};
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_DESCRIPTOR_BUDGET_H_
