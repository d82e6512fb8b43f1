// The buffered JSON-lines logger: what reaches the sink, and when.
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <condition_variable>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gatehouse/log.hpp"

using gatehouse::LogLevel;

namespace {

class CaptureSink : public gatehouse::LogSink {
 public:
  void write(std::string_view lines) override {
    std::lock_guard lock(mutex_);
    text_ += lines;
  }
  std::vector<boost::json::object> lines() {
    std::lock_guard lock(mutex_);
    std::vector<boost::json::object> out;
    std::istringstream in(text_);
    std::string line;
    while (std::getline(in, line)) out.push_back(boost::json::parse(line).as_object());
    return out;
  }
  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  std::mutex mutex_;
  std::string text_;
};

// A sink that blocks until released, as a reader that stopped reading would.
class StuckSink : public gatehouse::LogSink {
 public:
  void write(std::string_view lines) override {
    std::unique_lock lock(mutex_);
    released_.wait(lock, [this] { return open_; });
    for (char c : lines) count_ += c == '\n';
  }
  void release() {
    std::lock_guard lock(mutex_);
    open_ = true;
    released_.notify_all();
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  bool open_ = false;
  std::size_t count_ = 0;
};

}  // namespace

TEST(Logger, EventsAreJsonLinesWithTimeLevelAndFields) {
  auto sink = std::make_shared<CaptureSink>();
  gatehouse::Logger log(sink);
  log.event(LogLevel::warning, "reload", {{"what", "log-level"}, {"n", 2}});
  log.flush();
  auto lines = sink->lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("level"), "warning");
  EXPECT_EQ(lines[0].at("event"), "reload");
  EXPECT_EQ(lines[0].at("what"), "log-level");
  EXPECT_EQ(lines[0].at("n"), 2);
  const std::string time(lines[0].at("time").as_string());
  EXPECT_EQ(time.size(), 27u) << time;  // 2026-11-30T17:01:02.123456Z
  EXPECT_EQ(time.back(), 'Z');
}

TEST(Logger, LinesBelowTheLevelAreSkippedAndTheLevelCanChange) {
  auto sink = std::make_shared<CaptureSink>();
  gatehouse::Logger log(sink, LogLevel::warning);
  log.event(LogLevel::info, "quiet");
  log.access({.method = "GET", .path = "/", .status = 200});
  log.event(LogLevel::error, "loud");
  log.set_level(LogLevel::debug);
  log.event(LogLevel::debug, "chatty");
  log.flush();
  auto lines = sink->lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("event"), "loud");
  EXPECT_EQ(lines[1].at("event"), "chatty");
}

TEST(Logger, AccessLinesEscapeWhatTheClientSent) {
  auto sink = std::make_shared<CaptureSink>();
  gatehouse::Logger log(sink);
  const std::string path = std::string("/a\"b\\c\nd\x01\xff\xc3\xa9/") + '\0' + "z";
  log.access({.request_id = "rid-1",
              .remote = "127.0.0.1",
              .method = "GET",
              .path = path,
              .route = "unmatched",
              .status = 404,
              .duration = std::chrono::microseconds(1234),
              .user = "johndoe"});
  log.access({.request_id = "rid-2", .method = "GET", .path = "/", .status = 200});
  log.flush();
  auto lines = sink->lines();
  ASSERT_EQ(lines.size(), 2u) << sink->text();
  EXPECT_EQ(lines[0].at("event"), "access");
  EXPECT_EQ(lines[0].at("request_id"), "rid-1");
  EXPECT_EQ(lines[0].at("status"), 404);
  EXPECT_EQ(lines[0].at("duration_us"), 1234);
  EXPECT_EQ(lines[0].at("user"), "johndoe");
  EXPECT_EQ(lines[0].at("route"), "unmatched");
  // Valid UTF-8 passes through; a stray byte becomes \u00ff.
  EXPECT_EQ(std::string(lines[0].at("path").as_string()),
            "/a\"b\\c\nd\x01\xc3\xbf\xc3\xa9/" + std::string(1, '\0') + "z");
  EXPECT_FALSE(lines[1].contains("user"));  // unknown: left out
}

TEST(Logger, NothingLoggedBeforeFlushOrDestructionIsLost) {
  auto sink = std::make_shared<CaptureSink>();
  {
    gatehouse::Logger log(sink);
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < 2000; ++i) {
          log.access({.request_id = "r",
                      .method = "GET",
                      .path = "/x",
                      .status = static_cast<unsigned>(200 + t)});
        }
      });
    }
    for (auto& t : threads) t.join();
  }  // the destructor writes what is still buffered
  auto lines = sink->lines();
  EXPECT_EQ(lines.size(), 12000u);
}

TEST(Logger, AStuckSinkCostsBoundedMemoryAndDropsAreCounted) {
  auto sink = std::make_shared<StuckSink>();
  std::size_t logged = 0;
  {
    gatehouse::Logger log(sink);
    log.event(LogLevel::info, "first");
    std::this_thread::sleep_for(std::chrono::milliseconds(120));  // the writer is now stuck
    const std::string path(200, 'p');
    for (int i = 0; i < 40000; ++i) {  // about 11 MiB of lines, more than the 4 MiB cap
      log.access({.request_id = "r", .method = "GET", .path = path, .status = 200});
      ++logged;
    }
    EXPECT_GT(log.dropped(), 0u);
    const auto dropped = log.dropped();
    sink->release();
    log.flush();
    EXPECT_EQ(sink->count() + dropped, logged + 1);
  }
}

TEST(Logger, LevelNames) {
  EXPECT_EQ(gatehouse::parse_log_level("DEBUG"), LogLevel::debug);
  EXPECT_EQ(gatehouse::parse_log_level("warn"), LogLevel::warning);
  EXPECT_EQ(gatehouse::parse_log_level("error"), LogLevel::error);
  EXPECT_FALSE(gatehouse::parse_log_level("loud").has_value());
  EXPECT_FALSE(gatehouse::parse_log_level("").has_value());
  EXPECT_EQ(gatehouse::to_string(LogLevel::info), "info");
}
