// SPDX-License-Identifier: MIT
// tests/fuzz/replay_main.cpp - runs the fuzz target over files, as fmt's fuzzers do,
// so the corpus is a regression test in every build and the target cannot rot.
//
//   fuzz_replay FILE|DIR...   each file is one input; directories are read one level
// Exits non-zero if no input was found (a wrong path must not pass); a failing input
// aborts inside the target.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
bool is_dir(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (!is_dir(arg)) {
            files.push_back(arg);
            continue;
        }
        DIR* d = ::opendir(arg.c_str());
        if (d == nullptr) continue;
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') files.push_back(arg + "/" + e->d_name);
        ::closedir(d);
    }
    std::sort(files.begin(), files.end());
    std::size_t n = 0;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) {
            std::fprintf(stderr, "fuzz_replay: cannot read %s\n", f.c_str());
            return 1;
        }
        const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        ++n;
    }
    std::printf("fuzz_replay: %zu inputs replayed\n", n);
    return n == 0 ? 1 : 0;
}
