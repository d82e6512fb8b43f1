// Loopback ceiling for bench/run when nginx is not available: the smallest Beast
// server that answers every request with a fixed 200 JSON reply over keep-alive.
// Usage: ceiling PORT [THREADS]    (binds 127.0.0.1; THREADS defaults to the core count)
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

static asio::awaitable<void> session(tcp::socket sock) {
  sock.set_option(tcp::no_delay(true));
  boost::beast::flat_buffer buf;
  for (;;) {
    http::request<http::empty_body> req;
    auto [ec, n] = co_await http::async_read(sock, buf, req, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() =
        R"({"username":"johndoe","email":"johndoe@example.com","full_name":"John Doe","disabled":false})";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, m] = co_await http::async_write(sock, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !res.keep_alive()) co_return;
  }
}

static asio::awaitable<void> listen(tcp::acceptor& acc) {
  for (;;) {
    auto [ec, sock] = co_await acc.async_accept(asio::as_tuple(asio::use_awaitable));
    if (!ec) asio::co_spawn(acc.get_executor(), session(std::move(sock)), asio::detached);
  }
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  unsigned threads = argc > 2 ? std::atoi(argv[2]) : std::thread::hardware_concurrency();
  asio::io_context io(static_cast<int>(threads));
  tcp::acceptor acc(
      io, {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(std::atoi(argv[1]))});
  acc.listen(4096);
  asio::co_spawn(io, listen(acc), asio::detached);
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
}
