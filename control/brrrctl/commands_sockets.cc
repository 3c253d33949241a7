// Commands about sockets: sockets (list), close.
#include <optional>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "control/admin/peer_address.h"
#include "control/admin/request_ranges.h"
#include "control/brrrctl/brrrctl_flags.h"
#include "control/brrrctl/cli_values.h"
#include "control/brrrctl/commands.h"
#include "control/brrrctl/fleet_run.h"
#include "control/brrrctl/message_text.h"
#include "control/brrrctl/text_table.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;

TextTable SocketTable() {
  TextTable table({"FD", "LOOP", "KIND", "LOCAL", "PEER", "AGE", "BYTES_IN", "BYTES_OUT", "QUEUED", "SETS"});
  table.AlignRight(0).AlignRight(1).AlignRight(5).AlignRight(6).AlignRight(7).AlignRight(8);
  return table;
}

void AddSocket(const admin::SocketInfo& s, TextTable* table) {
  std::string sets = s.in_read_set() && s.in_write_set() ? "read,write"
                     : s.in_read_set()                   ? "read"
                     : s.in_write_set()                  ? "write"
                                                         : "-";
  table->AddRow({absl::StrCat(s.fd()), absl::StrCat(s.loop()), s.kind(), s.local(), s.peer().empty() ? "-" : s.peer(),
                 FormatMilliseconds(s.age_seconds() * 1000), absl::StrCat(s.bytes_in()), absl::StrCat(s.bytes_out()),
                 absl::StrCat(s.bytes_queued()), sets});
}

std::optional<admin::ListSocketsRequest::SetFilter> ParseSetFilter(std::string text) {
  text = absl::AsciiStrToLower(text);
  if (text == "all") return admin::ListSocketsRequest::ALL;
  if (text == "read" || text == "read_set" || text == "read-set") return admin::ListSocketsRequest::READ_SET;
  if (text == "write" || text == "write_set" || text == "write-set") return admin::ListSocketsRequest::WRITE_SET;
  if (text == "neither") return admin::ListSocketsRequest::NEITHER;
  return std::nullopt;
}

// --loop for commands that take one loop at most.
Outcome OneLoop(const char* command, std::optional<uint32_t>* loop) {
  const std::vector<uint32_t> loops = absl::GetFlag(FLAGS_loop).loops;
  if (loops.size() > 1) return Outcome::Usage(absl::StrCat(command, " takes one --loop"));
  if (!loops.empty()) *loop = loops.front();
  return Outcome::Ok();
}

Outcome RunSockets(Invocation& invocation) {
  admin::ListSocketsRequest request;
  std::optional<admin::ListSocketsRequest::SetFilter> set = ParseSetFilter(absl::GetFlag(FLAGS_set));
  if (!set.has_value()) {
    return Outcome::Usage(absl::StrCat("--set=", absl::GetFlag(FLAGS_set), ": expected all, read, write or neither"));
  }
  request.set_set(*set);
  std::optional<uint32_t> loop;
  if (Outcome o = OneLoop("sockets", &loop); !o.ok()) return o;
  if (loop.has_value()) request.set_loop(*loop);
  // Given, from 1 (0 would be the API's default, not "none"): the table's range, checked
  // before. Not given: 0, the default.
  request.set_limit(absl::GetFlag(FLAGS_limit));

  admin::ListSocketsResponse response;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.admin().ListSockets(context, request, &response);
  });
  if (!outcome.ok()) return outcome;
  TextTable table = SocketTable();
  for (const admin::SocketInfo& s : response.sockets()) AddSocket(s, &table);
  std::string text = table.Render();
  if (response.matched() > static_cast<uint64_t>(response.sockets_size())) {
    absl::StrAppend(&text, response.sockets_size(), " of ", response.matched(), " matching sockets listed (--limit)\n");
  }
  invocation.out.Result(response, text);
  return Outcome::Ok();
}

Outcome RunClose(Invocation& invocation) {
  admin::CloseConnectionRequest request;
  int32_t fd = 0;
  if (!absl::SimpleAtoi(invocation.args[0], &fd) || fd < 0) {
    return Outcome::Usage(absl::StrCat("close ", invocation.args[0], ": FD must be a file descriptor number (see brrrctl sockets)"));
  }
  request.set_fd(fd);
  std::optional<uint32_t> loop;
  if (Outcome o = OneLoop("close", &loop); !o.ok()) return o;
  if (loop.has_value()) request.set_loop(*loop);
  if (invocation.given("peer")) {
    // An empty --peer (a shell variable that was not set, say) would close whichever connection has FD.
    const std::string peer = absl::GetFlag(FLAGS_peer);
    if (peer.empty()) {
      return Outcome::Usage(
          "close --peer is empty: give the connection's HOST:PORT as brrrctl sockets lists it, or leave --peer out "
          "to close whichever connection has FD");
    }
    if (absl::Status form = CheckPeerAddress(peer); !form.ok()) {
      return Outcome::Usage(absl::StrCat("close --peer: ", form.message()));
    }
    request.set_peer(peer);
  }

  admin::CloseConnectionResponse response;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.admin().CloseConnection(context, request, &response);
  });
  if (!outcome.ok()) return outcome;
  TextTable table = SocketTable();
  AddSocket(response.closed(), &table);
  invocation.out.Result(response, absl::StrCat("closed:\n", table.Render()));
  return Outcome::Ok();
}

}  // namespace

std::vector<Command> SocketsCommands() {
  return {
      Command{
          .name = "sockets",
          .summary = "the open sockets: fd, loop, peer, age, bytes, queue, read/write set",
          .details = "ListSockets, by loop, then newest first. SETS says whether a socket is in its loop's read\n"
                     "set (a receive or accept pending) and write set (bytes queued to send).",
          .flags = {{"set", "SET", "all (default), read (receive pending), write (bytes queued), or neither"},
                    {"loop", "N", "only this loop's sockets"},
                    {"limit", "N",
                     "list at most N sockets, 1 to 100000 (default 10000); the count of\n"
                     "matching sockets is always given (`matched`)",
                     WholeRange{1, kMaxSocketLimit}}},
          .run = RunSockets,
          .run_fleet = OnEachTarget(RunSockets, [] { return std::make_unique<SocketsTotal>(); }),
      },
      Command{
          .name = "close",
          .arguments = "FD",
          .summary = "close one connection now (what is queued for it is dropped)",
          .details = "CloseConnection. FD is the connection's descriptor, as `brrrctl sockets` lists it.\n"
                     "Prints the connection as it was just before it closed. A descriptor is given out again\n"
                     "once its connection closes: --peer (as listed) makes sure the one closed is the one\n"
                     "meant; another connection on that descriptor by now is refused (exit 1), not closed.\n"
                     "--peer is HOST:PORT written as sockets lists it (127.0.0.1:41234, [::1]:41234); another\n"
                     "form, or an empty --peer=, is a usage error (exit 2) and nothing is called.",
          .changes_server = true,
          .min_args = 1,
          .max_args = 1,
          .flags = {{"loop", "N", "the loop that owns it (default: whichever has it)"},
                    {"peer", "HOST:PORT", "only if the connection is still this client's (left out: any)"}},
          .run = RunClose,
          // One target: a descriptor number means a connection on one server, another on the next.
      },
  };
}

}  // namespace brrr::control
