// mixed_clients.h: clients of every kind at once on an echo server, each picked at random:
// plain echoes sent and received in odd pieces, pipelines read only once all is sent,
// half-closes, resets while sending and while receiving, clients that never read (and then
// read everything back, or go), slow readers, storms of short connections, idle ones. Every
// echo a client waits for is checked byte for byte; a client that never reads checks that the
// server stopped taking its bytes within its bound. For tests of what the kinds do to each
// other (tests/server/mixed_clients_test.cc), and of a server changed under them (the admin
// plane's actions: tests/control/admin_under_load_test.cc). Loopback only; every wait bounded.
//
//   testing::MixedClients clients({.port = port, .seed = testing::MixedClientsSeed(), .queue_bound = 65536 + 16384});
//   clients.Start(std::chrono::steady_clock::now() + testing::MixedClientsDuration());
//   clients.Join();
//   for (const std::string& f : clients.Failures()) ADD_FAILURE() << f;
//   EXPECT_EQ(stats.connections_accepted, clients.tally().connects.load());
//
// Threads: Start launches the workers; StartDraining and the tally may be used from any
// thread; Join and Failures from the starting one.
#ifndef BRRR_TESTS_TESTING_MIXED_CLIENTS_H_
#define BRRR_TESTS_TESTING_MIXED_CLIENTS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace brrr::testing {

// What the clients did, for the server's own accounts to be checked against.
struct ClientTally {
  std::atomic<uint64_t> connects{0};       // connections established (the server must serve each)
  std::atomic<uint64_t> bytes_sent{0};     // bytes the clients' kernels took
  std::atomic<uint64_t> bytes_checked{0};  // echo bytes received and found right
  std::atomic<uint64_t> excused{0};        // failures on connections closed on purpose (below)
};

struct MixedClientsOptions {
  uint16_t port = 0;  // on 127.0.0.1
  uint64_t seed = 0;  // with the worker and its iteration, every choice a client makes
  int workers = 8;
  // What the server holds per connection before it stops reading (its --high_water plus one
  // receive buffer): a client that never reads must not get more taken (MostANeverReaderCanSend).
  size_t queue_bound = 0;
  // For a test that closes connections on purpose: whether the connection from this local port
  // was one of them. A failure on such a connection is counted in ClientTally::excused instead,
  // unless it is a wrong byte (or one too many), which nothing excuses.
  std::function<bool(uint16_t local_port)> closed_on_purpose;
};

// The seed BRRR_MIXED_CLIENTS_SEED names (to replay a run), or a new one.
uint64_t MixedClientsSeed();
// How long the clients run: the seconds BRRR_MIXED_CLIENTS_SECONDS names (a soak), or 5.
std::chrono::seconds MixedClientsDuration();

class MixedClients {
 public:
  explicit MixedClients(MixedClientsOptions options) : options_(std::move(options)) {}
  ~MixedClients() { Join(); }
  MixedClients(const MixedClients&) = delete;
  MixedClients& operator=(const MixedClients&) = delete;

  // Starts the workers: each runs one randomly picked client after another until `end` (a
  // client that started before `end` finishes, within its own bounds). Prints the seed.
  void Start(std::chrono::steady_clock::time_point end);
  // Says that the server is draining: from now on a refused connection is what it promises,
  // and ends that worker's run instead of failing it. Call it before the server is told.
  void StartDraining() { draining_.store(true); }
  void Join();

  const ClientTally& tally() const { return tally_; }
  // What went wrong, each naming the seed, worker, iteration and kind of client.
  std::vector<std::string> Failures() const;

 private:
  void Work(int worker);

  const MixedClientsOptions options_;
  std::chrono::steady_clock::time_point end_;
  std::atomic<bool> draining_{false};
  ClientTally tally_;
  std::vector<std::thread> workers_;
  mutable std::mutex mu_;
  std::vector<std::string> failures_;  // guarded by mu_
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_MIXED_CLIENTS_H_
