#include "tests/testing/http_client.h"

#include <strings.h>

#include <cstdlib>
#include <sstream>

namespace brrr::testing {

std::string HttpReply::header(const std::string& name) const {
  std::istringstream lines(head);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon != name.size()) continue;
    if (strncasecmp(line.c_str(), name.c_str(), name.size()) != 0) continue;
    size_t start = line.find_first_not_of(' ', colon + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "";
}

std::string HttpRequestText(const std::string& path, const std::vector<std::string>& headers,
                            const std::string& method) {
  std::string out = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const std::string& h : headers) out += h + "\r\n";
  return out + "\r\n";
}

HttpReply ReadHttpReply(BlockingClient& client, bool head_only) {
  HttpReply reply;
  std::string head;
  while (head.size() < 65536 && (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0)) {
    std::string byte = client.recv_exact(1);
    if (byte.empty()) return reply;
    head += byte;
  }
  if (head.compare(0, 9, "HTTP/1.1 ") != 0 || head.size() < 12) return reply;
  reply.head = head;
  if (!head_only) {
    size_t length = std::strtoull(reply.header("Content-Length").c_str(), nullptr, 10);
    reply.body = client.recv_exact(length);
    if (reply.body.size() != length) return reply;
  }
  reply.status = std::atoi(head.c_str() + 9);
  return reply;
}

HttpReply HttpGet(uint16_t port, const std::string& path, const std::vector<std::string>& headers,
                  const std::string& method) {
  BlockingClient client(port);
  std::vector<std::string> all = headers;
  all.push_back("Connection: close");
  if (!client.send_all(HttpRequestText(path, all, method))) return {};
  return ReadHttpReply(client, method == "HEAD");
}

}  // namespace brrr::testing
