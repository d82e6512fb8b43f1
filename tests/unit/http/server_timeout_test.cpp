// ServerOptions::read_timeout: a connection that sends nothing, or only part of a
// request, is closed once it has been waiting that long; one that keeps sending
// requests is not, however long it lives (the deadline counts from each request).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "gatehouse/app.hpp"
#include "gatehouse/server.hpp"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class TimeoutServer {
 public:
  TimeoutServer() {
    app_.get("/ping", {.name = "ping"}, [] { return boost::json::value{{"ok", true}}; });
    gatehouse::ServerOptions options;
    options.port = 0;
    options.io_threads = 1;
    options.worker_threads = 1;
    options.access_log = false;
    options.read_timeout = std::chrono::seconds(2);
    options.shutdown_grace = std::chrono::seconds(1);
    options.on_listening = [this](std::uint16_t port) { listening_.set_value(port); };
    server_ = std::make_unique<gatehouse::Server>(app_, options);
    runner_ = std::thread([this] { server_->run(); });
    port_ = listening_.get_future().get();
  }
  ~TimeoutServer() {
    server_->stop();
    runner_.join();
  }
  tcp::socket connect(net::io_context& ioc) const {
    tcp::socket s(ioc);
    s.connect({net::ip::make_address("127.0.0.1"), port_});
    return s;
  }

 private:
  gatehouse::App app_;
  std::promise<std::uint16_t> listening_;
  std::unique_ptr<gatehouse::Server> server_;
  std::thread runner_;
  std::uint16_t port_ = 0;
};

// Reads until the server closes the connection; returns what arrived, or "open" if
// the connection was still open after `limit` (a generous bound, not a timing claim).
std::string read_to_close(tcp::socket& s, std::chrono::seconds limit) {
  timeval tv{static_cast<time_t>(limit.count()), 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
    if (n == 0) return got;
    if (n < 0) return "open";
    got.append(buf, static_cast<std::size_t>(n));
  }
}

// One keep-alive request and its complete answer.
std::string ask(tcp::socket& s) {
  const std::string request = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  net::write(s, net::buffer(request));
  std::string reply;
  const auto head = net::read_until(s, net::dynamic_buffer(reply), "\r\n\r\n");
  const auto at = reply.find("Content-Length: ");
  const auto length = std::stoul(reply.substr(at + 16, reply.find("\r\n", at) - at - 16));
  if (reply.size() < head + length) {
    net::read(s, net::dynamic_buffer(reply), net::transfer_exactly(head + length - reply.size()));
  }
  return reply;
}

TEST(ServerReadTimeout, ClosesAConnectionThatSendsNothing) {
  TimeoutServer server;
  net::io_context ioc;
  auto s = server.connect(ioc);
  EXPECT_EQ(read_to_close(s, std::chrono::seconds(30)), "");
}

TEST(ServerReadTimeout, ClosesAConnectionStuckInTheMiddleOfAHeader) {
  TimeoutServer server;
  net::io_context ioc;
  auto s = server.connect(ioc);
  net::write(s, net::buffer(std::string("GET /ping HTTP/1.1\r\nHost: 12")));
  EXPECT_EQ(read_to_close(s, std::chrono::seconds(30)), "");
}

TEST(ServerReadTimeout, ClosesAKeptAliveConnectionLeftIdleAfterAnAnswer) {
  TimeoutServer server;
  net::io_context ioc;
  auto s = server.connect(ioc);
  EXPECT_NE(ask(s).find(R"({"ok":true})"), std::string::npos);
  EXPECT_EQ(read_to_close(s, std::chrono::seconds(30)), "");
}

TEST(ServerReadTimeout, AConnectionInUseLivesLongerThanTheTimeout) {
  TimeoutServer server;
  net::io_context ioc;
  auto s = server.connect(ioc);
  // 4 requests 1.2 s apart: the connection lives 3.6 s, past the 2 s timeout, and
  // each request is answered on it.
  for (int i = 0; i < 4; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    const auto reply = ask(s);
    EXPECT_NE(reply.find("HTTP/1.1 200 OK"), std::string::npos) << i << ": " << reply;
    EXPECT_NE(reply.find(R"({"ok":true})"), std::string::npos) << i << ": " << reply;
  }
}

}  // namespace
