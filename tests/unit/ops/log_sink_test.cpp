// A log sink the embedding program provides (log.hpp): every line the library writes
// (the server's access log and events, a failing handler or precheck, the data
// directory and signing-key warnings) reaches the program's sink, and nothing reaches
// standard error.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gatehouse/app.hpp"
#include "gatehouse/keys.hpp"
#include "gatehouse/log.hpp"
#include "gatehouse/server.hpp"

namespace {

namespace net = boost::asio;
namespace json = boost::json;

class CaptureSink : public gatehouse::LogSink {
 public:
  void write(std::string_view lines) override {
    std::lock_guard lock(mutex_);
    text_ += lines;
  }
  std::vector<json::object> events() {
    std::lock_guard lock(mutex_);
    std::vector<json::object> out;
    std::istringstream in(text_);
    std::string line;
    while (std::getline(in, line)) out.push_back(json::parse(line).as_object());
    return out;
  }

 private:
  std::mutex mutex_;
  std::string text_;
};

// Standard error (fd 2) goes to a file while this lives; text() is what was written.
class StderrCapture {
 public:
  StderrCapture() : path_(std::filesystem::temp_directory_path() / "gatehouse-log-sink-stderr") {
    std::fflush(stderr);
    saved_ = ::dup(2);
    FILE* f = std::fopen(path_.c_str(), "w");
    ::dup2(::fileno(f), 2);
    std::fclose(f);
  }
  ~StderrCapture() { restore(); }
  std::string text() {
    restore();
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::filesystem::remove(path_);
    return ss.str();
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::filesystem::path path_;
  int saved_ = -1;
};

unsigned status_of(std::uint16_t port, const std::string& target) {
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), port});
  const std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  net::write(socket, net::buffer(request));
  std::string reply;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(reply), ec);
  return static_cast<unsigned>(std::stoul(reply.substr(9, 3)));
}

std::vector<json::object> named(const std::vector<json::object>& events, std::string_view name) {
  std::vector<json::object> out;
  for (const auto& e : events) {
    if (e.at("event").as_string() == name) out.push_back(e);
  }
  return out;
}

TEST(LogSink, EveryLibraryLineReachesTheProgramsSinkAndNoneStandardError) {
  auto sink = std::make_shared<CaptureSink>();
  auto logger = std::make_shared<gatehouse::Logger>(sink);
  StderrCapture stderr_capture;
  gatehouse::set_default_logger(logger);

  gatehouse::App app;  // takes the default logger: the program's
  EXPECT_EQ(app.logger(), logger);
  app.get("/ok", {.name = "ok"}, [] { return json::value{{"ok", true}}; });
  app.get("/boom", {.name = "boom"},
          []() -> json::value { throw std::runtime_error("the handler failed"); });
  app.get("/early",
          {.name = "early",
           .precheck = [](gatehouse::RequestContext&) -> std::optional<gatehouse::Response> {
             throw std::runtime_error("the precheck failed");
           }},
          [] {
            return json::value{{"early", false}};
          });

  std::promise<std::uint16_t> listening;
  gatehouse::ServerOptions options;
  options.port = 0;
  options.io_threads = 1;
  options.worker_threads = 1;
  options.shutdown_grace = std::chrono::seconds(2);
  options.on_listening = [&listening](std::uint16_t port) { listening.set_value(port); };
  gatehouse::Server server(app, options);
  std::thread runner([&] { server.run(); });
  const auto port = listening.get_future().get();
  EXPECT_EQ(status_of(port, "/ok"), 200u);
  EXPECT_EQ(status_of(port, "/boom"), 500u);
  EXPECT_EQ(status_of(port, "/early"), 500u);
  server.stop();
  runner.join();

  // A data directory open to others (ensure_private_dir): a warning, with no App in sight.
  const auto dir = std::filesystem::temp_directory_path() / "gatehouse-log-sink-data";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);
  ::chmod(dir.c_str(), 0755);
  gatehouse::ensure_private_dir(dir);
  std::filesystem::remove_all(dir);

  logger->flush();
  gatehouse::set_default_logger(nullptr);
  EXPECT_EQ(stderr_capture.text(), "");

  const auto events = sink->events();
  const auto access = named(events, "access");
  ASSERT_EQ(access.size(), 3u);
  EXPECT_EQ(access[0].at("route"), json::value("/ok"));
  EXPECT_EQ(access[0].at("status"), json::value(200));
  EXPECT_EQ(access[1].at("status"), json::value(500));
  const auto errors = named(events, "handler_error");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].at("route"), json::value("/boom"));
  EXPECT_EQ(errors[0].at("error"), json::value("the handler failed"));
  EXPECT_EQ(errors[1].at("route"), json::value("/early"));
  EXPECT_EQ(errors[1].at("error"), json::value("the precheck failed"));
  EXPECT_EQ(named(events, "shutdown").size(), 1u);
  const auto open = named(events, "data_dir_open");
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].at("mode"), json::value("755"));
  EXPECT_EQ(open[0].at("level"), json::value("warning"));
}

TEST(LogSink, WithoutAProgramLoggerTheDefaultIsStandardErrors) {
  gatehouse::set_default_logger(nullptr);
  const auto first = gatehouse::default_logger();
  EXPECT_EQ(gatehouse::default_logger(), first);
  auto mine = std::make_shared<gatehouse::Logger>(std::make_shared<CaptureSink>());
  gatehouse::set_default_logger(mine);
  EXPECT_EQ(gatehouse::default_logger(), mine);
  gatehouse::set_default_logger(nullptr);
  EXPECT_EQ(gatehouse::default_logger(), first);
}

}  // namespace
