// asio_echo: a TCP echo server on Boost.Asio (Debian's libboost-dev 1.74, header-only) with
// C++20 coroutines, as Asio's own examples/cpp20/coroutines/echo_server.cpp writes one
// (co_spawn, awaitable, use_awaitable), for brrr's side-by-side benchmark (bench/echo.sh): the
// C++ library users would pick instead of brrr. A benchmark is only as honest as its strongest
// peer, so it is written as Asio's best users would write it.
//
//   asio_echo PORT   listens on 127.0.0.1:PORT (0: a free port the kernel picks) and prints
//                    "asio_echo: listening on 127.0.0.1:PORT (Boost.Asio VERSION)"
//
// How:
//   - One coroutine per connection: async_read_some into the connection's own 64 KiB buffer
//     (part of the coroutine frame, allocated once per connection), then async_write of exactly
//     what was read. Asio tries each operation at once ("speculatively") before it waits in
//     epoll: per message one recvfrom and one sendto plus a share of epoll_wait, and a read tried
//     before the next message is in fails with EAGAIN (about 0.2 recvfrom per message at 64
//     connections ping-pong, under strace: bench/README.md "The peers"); that is Asio's design,
//     not something its users turn off. The socket is registered with epoll once
//     (edge-triggered), so no epoll_ctl per message.
//   - Flow control comes with the shape: the next read starts only when the write is done, so a
//     client that never reads holds one buffer's worth per connection.
//   - TCP_NODELAY on every accepted connection.
//   - One io_context with concurrency hint 1 (no locking), run on the main thread.
//   - EOF and errors (ECONNRESET, EPIPE) end the connection's coroutine, whose socket closes as
//     it goes. SIGTERM or SIGINT stops the io_context; destroying it destroys every suspended
//     coroutine, so the process exits 0 with everything freed.
#include <signal.h>

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/version.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

constexpr std::size_t kBufferBytes = 64 * 1024;

awaitable<void> Echo(tcp::socket socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  char data[kBufferBytes];
  for (;;) {
    std::size_t n = co_await socket.async_read_some(asio::buffer(data), asio::redirect_error(use_awaitable, ec));
    if (ec) break;  // EOF or an error: the socket closes as the coroutine ends
    co_await asio::async_write(socket, asio::buffer(data, n), asio::redirect_error(use_awaitable, ec));
    if (ec) break;
  }
}

awaitable<void> Listen(tcp::acceptor& acceptor) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;  // the acceptor closed: shutting down
    if (ec) {
      std::fprintf(stderr, "asio_echo: accept failed: %s; still listening\n", ec.message().c_str());
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), Echo(std::move(socket)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 5000;
  try {
    asio::io_context io(1);
    tcp::acceptor acceptor(io);
    tcp::endpoint want(asio::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(port));
    acceptor.open(want.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(want);
    acceptor.listen(4096);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
    asio::co_spawn(io, Listen(acceptor), asio::detached);

    std::printf("asio_echo: listening on 127.0.0.1:%u (Boost.Asio %d.%d.%d)\n", acceptor.local_endpoint().port(),
                BOOST_ASIO_VERSION / 100000, BOOST_ASIO_VERSION / 100 % 1000, BOOST_ASIO_VERSION % 100);
    std::fflush(stdout);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo: cannot listen on 127.0.0.1:%d: %s\n", port, e.what());
    return 3;
  }
  return 0;
}
