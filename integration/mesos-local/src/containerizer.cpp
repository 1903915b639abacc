// mesos-containerizer (only the `launch` subcommand), for the agents run by
// mesos-local-host. For every executor the agent forks
//   <MESOS_LAUNCHER_DIR>/mesos-containerizer launch <flags>
// with the ContainerLaunchInfo (JSON) in MESOS_CONTAINERIZER_LAUNCH_INFO.
// The code of that subcommand is in `_scheduler.so`
// (mesos::internal::slave::MesosContainerizerLaunch), but its constructor is
// inline and not exported, so the object is laid out here by hand:
//
//   +0x000  vptr = &vtable(MesosContainerizerLaunch) + 16
//   +0x008  std::string name_ ("launch")             (stout Subcommand)
//   +0x028  flags::FlagsBase                         (stout Subcommand)
//   +0x0e0  MesosContainerizerLaunch::Flags flags    (complete object,
//           whose virtual base flags::FlagsBase is at +0x0e0 + 0x88 = +0x168)
//   +0x220  end
//
// The layout is checked at run time: the virtual-base offset in the Flags
// vtable (vtable[-3]) must be 0x88, and the library's own getFlags() must
// return this + 0x168.
//
// Also: in local mode the agent does not redirect the container's output to
// the sandbox, so fd 1 and fd 2 are pointed at <working_directory>/stdout and
// <working_directory>/stderr before execute().
//
// `mesos-containerizer check` only builds the object and checks the layout
// (used by `mesos-local build`).

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "abi.hpp"

namespace {

constexpr std::size_t kNameOffset = 0x008;
constexpr std::size_t kSubcommandFlagsOffset = 0x028;
constexpr std::size_t kFlagsOffset = 0x0e0;
constexpr std::size_t kFlagsVirtualBaseOffset = 0x088;  // within Flags
constexpr std::size_t kFlagsBaseOffset = kFlagsOffset + kFlagsVirtualBaseOffset;  // 0x168
constexpr std::size_t kObjectSize = 0x220;

// Try<flags::Warnings, Error> = { Option<Warnings> data; Option<Error> error_; }
//   +0   int state of Option<Warnings>
//   +8   Warnings (one std::vector, 24 bytes)
//   +32  int state of Option<Error>  (0 = SOME: an error)
//   +40  Error { std::string message; }
constexpr std::size_t kTryErrorStateOffset = 32;
constexpr std::size_t kTryErrorMessageOffset = 40;

alignas(64) unsigned char launchStorage[0x400];  // > kObjectSize, zeroed (static)
alignas(64) unsigned char loadResult[256];

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "mesos-containerizer (drover mesos-local): %s\n", message.c_str());
  std::fflush(stderr);
  std::exit(1);
}

void* build() {
  static_assert(sizeof(launchStorage) >= kObjectSize, "storage too small");
  unsigned char* obj = launchStorage;

  *reinterpret_cast<void**>(obj) = drover_MesosContainerizerLaunch_vtable + 16;
  new (obj + kNameOffset) std::string("launch");
  drover_FlagsBase_ctor(obj + kSubcommandFlagsOffset);
  drover_MesosContainerizerLaunch_Flags_ctor(obj + kFlagsOffset);

  // Layout checks.
  const std::intptr_t* flagsVptr = *reinterpret_cast<std::intptr_t**>(obj + kFlagsOffset);
  const std::intptr_t vbaseOffset = flagsVptr[-3];
  if (vbaseOffset != static_cast<std::intptr_t>(kFlagsVirtualBaseOffset)) {
    char buf[128];
    std::snprintf(buf, sizeof(buf), "unexpected Flags virtual-base offset 0x%lx (expected 0x%lx)",
                  static_cast<long>(vbaseOffset), static_cast<long>(kFlagsVirtualBaseOffset));
    fail(buf);
  }
  if (drover_MesosContainerizerLaunch_getFlags(obj) != obj + kFlagsBaseOffset) {
    fail("getFlags() does not return this + 0x168: unexpected object layout");
  }
  return obj;
}

// Extracts the string value of a top-level-ish key from a JSON text.
// Enough for ContainerLaunchInfo's "working_directory"; handles escapes.
bool jsonStringField(const std::string& json, const std::string& key, std::string* out) {
  const std::string needle = "\"" + key + "\"";
  std::size_t pos = 0;
  while ((pos = json.find(needle, pos)) != std::string::npos) {
    std::size_t i = pos + needle.size();
    while (i < json.size() && std::isspace(static_cast<unsigned char>(json[i]))) i++;
    if (i >= json.size() || json[i] != ':') { pos = i; continue; }
    i++;
    while (i < json.size() && std::isspace(static_cast<unsigned char>(json[i]))) i++;
    if (i >= json.size() || json[i] != '"') { pos = i; continue; }
    i++;
    std::string value;
    while (i < json.size() && json[i] != '"') {
      char c = json[i++];
      if (c != '\\') { value.push_back(c); continue; }
      if (i >= json.size()) return false;
      char e = json[i++];
      switch (e) {
        case 'n': value.push_back('\n'); break;
        case 't': value.push_back('\t'); break;
        case 'r': value.push_back('\r'); break;
        case 'b': value.push_back('\b'); break;
        case 'f': value.push_back('\f'); break;
        case 'u': {
          if (i + 4 > json.size()) return false;
          unsigned long cp = std::strtoul(json.substr(i, 4).c_str(), nullptr, 16);
          i += 4;
          if (cp < 0x80) {
            value.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            value.push_back(static_cast<char>(0xc0 | (cp >> 6)));
            value.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          } else {
            value.push_back(static_cast<char>(0xe0 | (cp >> 12)));
            value.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            value.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          }
          break;
        }
        default: value.push_back(e); break;  // \" \\ \/
      }
    }
    if (i >= json.size()) return false;
    *out = value;
    return true;
  }
  return false;
}

std::string launchInfoJson(int argc, char** argv) {
  const char* env = std::getenv("MESOS_CONTAINERIZER_LAUNCH_INFO");
  if (env != nullptr) return env;
  const std::string flag = "--launch_info=";
  for (int i = 2; i < argc; i++) {
    if (std::strncmp(argv[i], flag.c_str(), flag.size()) == 0) return argv[i] + flag.size();
  }
  return "";
}

void redirectOutput(const std::string& directory) {
  const char* names[2] = {"stdout", "stderr"};
  for (int fd = 1; fd <= 2; fd++) {
    const std::string path = directory + "/" + names[fd - 1];
    int out = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) {
      fail("cannot open " + path + ": " + std::strerror(errno));
    }
    if (dup2(out, fd) < 0) {
      fail("dup2 onto " + path + " failed: " + std::strerror(errno));
    }
    close(out);
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "launch") != 0 && std::strcmp(argv[1], "check") != 0)) {
    std::fprintf(stderr,
                 "usage: %s launch [--flag=value ...]   (Mesos containerizer launch helper)\n"
                 "       %s check                        (verify the object layout)\n"
                 "This is Drover's mesos-local helper; only `launch` is supported.\n",
                 argv[0], argv[0]);
    return 1;
  }

  void* launch = build();

  if (std::strcmp(argv[1], "check") == 0) {
    std::printf("mesos-containerizer: layout ok\n");
    return 0;
  }

  // Load flags from MESOS_CONTAINERIZER_* and from argv[2..] (argv[1],
  // "launch", stands in for the program name, as in stout's Subcommand).
  drover::OptionString prefix(std::string("MESOS_CONTAINERIZER_"));
  drover_FlagsBase_load(loadResult, static_cast<unsigned char*>(launch) + kFlagsBaseOffset,
                        prefix, argc - 1, argv + 1, false, false);
  if (*reinterpret_cast<int*>(loadResult + kTryErrorStateOffset) == drover::OptionString::SOME) {
    const std::string* message = reinterpret_cast<const std::string*>(loadResult + kTryErrorMessageOffset);
    fail("failed to load flags: " + *message);
  }

  std::string directory;
  if (jsonStringField(launchInfoJson(argc, argv), "working_directory", &directory) &&
      !directory.empty()) {
    redirectOutput(directory);
  }

  return drover_MesosContainerizerLaunch_execute(launch);
}
