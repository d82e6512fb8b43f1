// The request path as a client reaches it: the bytes of one connection (any number of
// pipelined requests) go to the server's real Session code over a socketpair, with
// Beast's parser, the framing checks (Transfer-Encoding, Host, Expect), the header and
// body limits, routing, form parsing, the security dependencies and the worker pool.
// The client half-closes after sending and reads until the server closes.
//
// The app mirrors the tutorial's routes with the library's own dependencies
// (OAuth2PasswordRequestForm, OAuth2PasswordBearer with scopes, JWT decoding) but
// checks the password with a plain compare: a password hash per input would make the
// fuzzer a benchmark of bcrypt. The limits are smaller than the defaults so that
// inputs of a few KiB reach them.
//
// Findings: any sanitizer report, a hang, a 500 answer, or an answer that does not
// begin with an HTTP/1.1 status line.
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gatehouse/gatehouse.hpp"
#include "http/connection_host.hpp"

namespace {

namespace net = boost::asio;
namespace json = boost::json;
using gatehouse::Depends;
using gatehouse::Err;
using gatehouse::HttpException;
using gatehouse::Outcome;
using gatehouse::Security;
using gatehouse::SecurityScopes;

struct Fixture {
  gatehouse::App app{[] {
    gatehouse::AppInfo info;
    info.web_dir = "/nonexistent/gatehouse-fuzz-web";
    return info;
  }()};
  gatehouse::jwt::Hs256Key key{"fuzz-secret-key"};
  gatehouse::ServerOptions options;
  std::unique_ptr<gatehouse::http::ConnectionHost> host;

  Fixture() {
    app.max_body_bytes = 2048;
    options.header_limit = 1024;
    options.access_log = false;
    options.worker_threads = 1;
    options.forwarded_allow_ips = {"*"};

    gatehouse::OAuth2PasswordBearer bearer({
        .token_url = "token",
        .scopes = {{"me", "Read information about the current user."}, {"items", "Read items."}},
    });
    auto current_user = gatehouse::dependency<std::string>(
        [this](const SecurityScopes& scopes, const std::string& token) -> Outcome<std::string> {
          auto rejected = [&](const char* detail) {
            std::string challenge = "Bearer";
            if (!scopes.empty()) challenge = "Bearer scope=\"" + scopes.scope_str() + "\"";
            return Err{HttpException(401, detail, {{"WWW-Authenticate", challenge}})};
          };
          auto claims = gatehouse::jwt::decode(key, token, gatehouse::jwt::now_seconds());
          if (!claims) return rejected("Could not validate credentials");
          auto data = gatehouse::jwt::TokenData::from_claims(*claims);
          if (!data || data->username != "johndoe")
            return rejected("Could not validate credentials");
          for (const auto& s : scopes.scopes()) {
            if (std::find(data->scopes.begin(), data->scopes.end(), s) == data->scopes.end()) {
              return rejected("Not enough permissions");
            }
          }
          return data->username;
        },
        Depends(bearer));
    app.post(
        "/token", {.name = "login_for_access_token", .offload = true},
        [this](const gatehouse::OAuth2PasswordRequestForm& form) -> Outcome<json::value> {
          if (form.username != "johndoe" || form.password != "secret") {
            return Err{HttpException(401, "Incorrect username or password",
                                     {{"WWW-Authenticate", "Bearer"}})};
          }
          json::array scopes;
          for (const auto& s : form.scopes) scopes.emplace_back(s);
          json::object claims{{"sub", form.username}, {"scopes", std::move(scopes)}};
          claims["exp"] = gatehouse::jwt::now_seconds() + 1800;
          return json::value{{"access_token", gatehouse::jwt::encode(key, claims)},
                             {"token_type", "bearer"}};
        },
        Depends(gatehouse::OAuth2PasswordRequestForm::dependency()));
    app.get(
        "/users/me/", {.name = "read_users_me"},
        [](const std::string& user) {
          return json::value{{"username", user}};
        },
        Security(current_user, {"me"}));
    app.get(
        "/users/me/items/", {.name = "read_own_items"},
        [](const std::string& user) {
          return json::value{{"owner", user}};
        },
        Security(current_user, {"me", "items"}));
    app.get(
        "/items/", {.name = "read_items"},
        [](const std::string& token) {
          return json::value{{"token", token}};
        },
        Depends(bearer));
    host = std::make_unique<gatehouse::http::ConnectionHost>(app, options);
  }
};

void check_answer(const std::string& out) {
  if (out.empty()) return;  // closed without an answer (e.g. a request cut short)
  if (out.compare(0, 9, "HTTP/1.1 ") != 0) {
    std::fprintf(stderr, "answer does not start with a status line: %.80s\n", out.c_str());
    std::abort();
  }
  if (out.compare(9, 3, "500") == 0) {
    std::fprintf(stderr, "500 answer:\n%.400s\n", out.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture& f = *new Fixture();
  auto& ioc = f.host->context();
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  f.host->start(fds[0]);

  net::local::stream_protocol::socket client(ioc);
  client.assign(net::local::stream_protocol(), fds[1]);
  net::async_write(client, net::buffer(data, size),
                   [&client](boost::system::error_code, std::size_t) {
                     boost::system::error_code ec;
                     client.shutdown(net::socket_base::shutdown_send, ec);
                   });
  std::string out;
  char buf[4096];
  std::function<void()> read_more = [&] {
    client.async_read_some(net::buffer(buf), [&](boost::system::error_code ec, std::size_t n) {
      if (out.size() < 64 * 1024) out.append(buf, n);
      if (ec) {
        client.close(ec);
        return;
      }
      read_more();
    });
  };
  read_more();
  f.host->run();
  ioc.restart();
  ioc.run();  // the client's read of the end of the stream
  check_answer(out);
  return 0;
}
