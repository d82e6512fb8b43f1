// Server (include/gatehouse/server.hpp): run() until stop(), from code, without taking
// over the process's signals.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <future>
#include <string>
#include <thread>

#include "gatehouse/app.hpp"
#include "gatehouse/server.hpp"

namespace {

namespace net = boost::asio;

std::string get(std::uint16_t port, const std::string& target) {
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), port});
  const std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  net::write(socket, net::buffer(request));
  std::string reply;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(reply), ec);
  return reply;
}

bool handler_is_default(int signal_number) {
  struct sigaction current {};
  sigaction(signal_number, nullptr, &current);
  return current.sa_handler == SIG_DFL;
}

gatehouse::ServerOptions quiet_options(std::promise<std::uint16_t>& listening) {
  gatehouse::ServerOptions options;
  options.port = 0;
  options.io_threads = 1;
  options.worker_threads = 1;
  options.access_log = false;
  options.shutdown_grace = std::chrono::seconds(2);
  options.on_listening = [&listening](std::uint16_t port) { listening.set_value(port); };
  return options;
}

TEST(Server, RunsUntilStopWithoutTouchingSignals) {
  ASSERT_TRUE(handler_is_default(SIGINT));
  ASSERT_TRUE(handler_is_default(SIGTERM));
  gatehouse::App app;
  app.get(
      "/items/{item_id}", {.name = "read_item"},
      [](int item_id) {
        return boost::json::value{{"item_id", item_id}};
      },
      gatehouse::Path<int>("item_id"));
  std::promise<std::uint16_t> listening;
  gatehouse::Server server(app, quiet_options(listening));
  std::thread runner([&] { server.run(); });
  const auto port = listening.get_future().get();
  const auto reply = get(port, "/items/42");
  EXPECT_NE(reply.find("HTTP/1.1 200"), std::string::npos) << reply;
  EXPECT_NE(reply.find(R"({"item_id":42})"), std::string::npos) << reply;
  // While it serves, SIGINT and SIGTERM are still the program's.
  EXPECT_TRUE(handler_is_default(SIGINT));
  EXPECT_TRUE(handler_is_default(SIGTERM));
  server.stop();
  runner.join();  // run() returned
  EXPECT_TRUE(handler_is_default(SIGINT));
}

TEST(Server, StopBeforeRunMakesRunReturn) {
  gatehouse::App app;
  std::promise<std::uint16_t> listening;
  gatehouse::Server server(app, quiet_options(listening));
  server.stop();
  auto done = std::async(std::launch::async, [&] { server.run(); });
  EXPECT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
}

}  // namespace
