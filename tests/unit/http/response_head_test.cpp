// The response head the server writes through a pointer into its output buffer: the
// status line, the headers a handler gives (CR and LF in a value become spaces, so no
// value can add a header), Content-Type, Content-Length and the body, exactly; a
// large header and body still fit.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <future>
#include <string>
#include <thread>

#include "gatehouse/app.hpp"
#include "gatehouse/server.hpp"

namespace {

namespace net = boost::asio;

std::string exchange(std::uint16_t port, const std::string& request) {
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), port});
  net::write(socket, net::buffer(request));
  std::string reply;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(reply), ec);
  return reply;
}

// The reply without its Date line, which changes every second.
std::string without_date(std::string reply) {
  const auto at = reply.find("\r\nDate: ");
  if (at == std::string::npos) return reply;
  const auto end = reply.find("\r\n", at + 2);
  return reply.erase(at, end - at);
}

TEST(ResponseHead, ExactBytes) {
  gatehouse::App app;
  app.get("/h", {.name = "h"}, [] {
    gatehouse::Response r;
    r.status = 201;
    r.body = R"({"ok":true})";
    r.headers = {{"X-One", "a\r\nInjected: yes"}, {"X-Two", "b\nc\rd"}};
    return r;
  });
  app.get("/big", {.name = "big"}, [] {
    gatehouse::Response r;
    r.body = std::string(100000, 'b');
    r.content_type = "text/plain; " + std::string(3000, 'c');
    r.headers = {{"X-Long", std::string(5000, 'v')}};
    return r;
  });
  gatehouse::ServerOptions options;
  options.port = 0;
  options.io_threads = 1;
  options.worker_threads = 1;
  options.access_log = false;
  options.shutdown_grace = std::chrono::seconds(2);
  std::promise<std::uint16_t> listening;
  options.on_listening = [&listening](std::uint16_t port) { listening.set_value(port); };
  gatehouse::Server server(app, options);
  std::thread runner([&] { server.run(); });
  const auto port = listening.get_future().get();

  EXPECT_EQ(without_date(
                exchange(port, "GET /h HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")),
            "HTTP/1.1 201 Created\r\nServer: gatehouse\r\nX-One: a  Injected: yes\r\n"
            "X-Two: b c d\r\nContent-Type: application/json\r\nConnection: close\r\n"
            "Content-Length: 11\r\n\r\n{\"ok\":true}");
  // HTTP/1.0 keep-alive is said; HEAD gets the length without the body.
  EXPECT_EQ(without_date(exchange(port, "HEAD /h HTTP/1.0\r\n\r\n")),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: gatehouse\r\nAllow: GET\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n"
            "Content-Length: 31\r\n\r\n");
  const auto big = without_date(
      exchange(port, "GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(big, "HTTP/1.1 200 OK\r\nServer: gatehouse\r\nX-Long: " + std::string(5000, 'v') +
                     "\r\nContent-Type: text/plain; " + std::string(3000, 'c') +
                     "\r\nConnection: close\r\nContent-Length: 100000\r\n\r\n" +
                     std::string(100000, 'b'));
  server.stop();
  runner.join();
}

}  // namespace
