#include "jamnet/engine/io/file_backend.hpp"

#include <sndfile.h>

#include "sndfile_ptr.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace jamnet::engine::io {
namespace {

// Cycles per file read/write: big enough that the syscalls vanish next to the
// processing, small enough to stay in cache.
constexpr std::uint32_t kChunkTargetFrames = 8192;

enum class OutFormat { kNone, kWavFloat, kFlac24 };

Result<OutFormat> output_format(const std::string& path) {
  if (path.empty()) return OutFormat::kNone;
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".wav") return OutFormat::kWavFloat;
  if (ext == ".flac") return OutFormat::kFlac24;
  return make_error(Errc::kInvalidArgument,
                    "output file '" + path + "': the name must end in .wav or .flac");
}

class FileBackend final : public AudioBackend {
 public:
  FileBackend(const BackendConfig& config, SndfilePtr input, int input_channels,
              std::uint64_t total_frames, std::uint64_t input_frames, OutFormat format)
      : config_(config),
        input_(std::move(input)),
        input_channels_(input_channels),
        total_frames_(total_frames),
        input_frames_(input_frames),
        format_(format) {
    for (const auto& n : config_.inputs) input_names_.push_back(config_.client_name + ":" + n);
    for (const auto& n : config_.outputs) output_names_.push_back(config_.client_name + ":" + n);
  }

  ~FileBackend() override { stop(); }

  Result<void> start(AudioCallback& cb) override {
    std::lock_guard lock(mutex_);
    if (thread_.joinable())
      return make_error(Errc::kInvalidArgument, "file backend already started");
    if (started_) return make_error(Errc::kUnsupported, "the file backend runs once; open another");
    const auto outputs = output_names_.size();
    SndfilePtr out;
    if (format_ != OutFormat::kNone) {
      if (outputs == 0)
        return make_error(Errc::kInvalidArgument,
                          "output file '" + config_.output_path + "' but no outputs to write");
      SF_INFO info{};
      info.channels = static_cast<int>(outputs);
      info.samplerate = static_cast<int>(config_.sample_rate);
      info.format = format_ == OutFormat::kFlac24 ? (SF_FORMAT_FLAC | SF_FORMAT_PCM_24)
                                                  : (SF_FORMAT_WAV | SF_FORMAT_FLOAT);
      out.reset(sf_open(config_.output_path.c_str(), SFM_WRITE, &info));
      if (!out) {
        return make_error(Errc::kIo,
                          "cannot write '" + config_.output_path + "': " + sf_strerror(nullptr));
      }
      // Integer formats: clip instead of wrapping around on overs.
      if (format_ == OutFormat::kFlac24) sf_command(out.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
    }

    // Every buffer the cycles touch, allocated before the first one.
    chunk_frames_ = std::max(config_.frames, kChunkTargetFrames / config_.frames * config_.frames);
    in_interleaved_.assign(static_cast<std::size_t>(chunk_frames_) * input_channels_, 0.0f);
    in_planar_.assign(config_.inputs.size(), std::vector<float>(chunk_frames_, 0.0f));
    out_planar_.assign(outputs, std::vector<float>(chunk_frames_, 0.0f));
    out_interleaved_.assign(static_cast<std::size_t>(chunk_frames_) * outputs, 0.0f);
    in_ptrs_.assign(in_planar_.size(), nullptr);
    out_ptrs_.assign(outputs, nullptr);

    started_ = true;
    stop_requested_.store(false);
    SNDFILE* raw_out =
        out.release();  // the worker closes it, so the file is complete when finished
    try {
      thread_ = std::thread([this, cb_ptr = &cb, raw_out] { run(*cb_ptr, SndfilePtr(raw_out)); });
    } catch (const std::system_error& e) {
      if (raw_out != nullptr) sf_close(raw_out);
      return make_error(Errc::kIo,
                        std::string("cannot start the file backend's thread: ") + e.what());
    }
    return {};
  }

  void stop() override {
    std::lock_guard lock(mutex_);
    stop_requested_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
  }

  bool finished() const override { return finished_.load(std::memory_order_acquire); }

  std::string kind() const override { return "file"; }
  std::string client_name() const override { return config_.client_name; }
  std::uint32_t sample_rate() const override { return config_.sample_rate; }
  std::uint32_t buffer_size() const override { return config_.frames; }
  std::uint64_t xruns() const override { return 0; }  // nothing runs against a clock
  std::uint64_t cycles() const override { return cycles_.load(std::memory_order_relaxed); }

  Result<std::size_t> add_output(const std::string& name) override {
    std::lock_guard lock(mutex_);
    if (started_) {
      return make_error(Errc::kUnsupported,
                        "the file backend cannot add outputs once started: the output file's "
                        "channel count is fixed");
    }
    if (name.empty()) return make_error(Errc::kInvalidArgument, "a port name is empty");
    const std::string full = config_.client_name + ":" + name;
    for (const auto* names : {&input_names_, &output_names_}) {
      if (std::find(names->begin(), names->end(), full) != names->end())
        return make_error(Errc::kInvalidArgument, "port '" + full + "' exists");
    }
    output_names_.push_back(full);
    return output_names_.size() - 1;
  }

  Result<void> remove_output(std::size_t index) override {
    return make_error(Errc::kUnsupported, "the file backend cannot remove output " +
                                              std::to_string(index) +
                                              ": the output file's channel count is fixed");
  }

  std::vector<std::string> input_ports() const override {
    std::lock_guard lock(mutex_);
    return input_names_;
  }
  std::vector<std::string> output_ports() const override {
    std::lock_guard lock(mutex_);
    return output_names_;
  }

  std::optional<Error> failure() const override {
    std::lock_guard lock(failure_mutex_);
    return failure_;
  }

 private:
  Nanos virtual_ns(std::uint64_t frames) const noexcept {
    const std::uint64_t rate = config_.sample_rate;
    return static_cast<Nanos>(frames / rate) * 1'000'000'000 +
           static_cast<Nanos>((frames % rate) * 1'000'000'000 / rate);
  }

  void fail(std::string message) {
    std::lock_guard lock(failure_mutex_);
    if (!failure_) failure_ = Error{Errc::kIo, std::move(message)};
  }

  // Fills in_planar_[*][0..n) from the file (silence past its end).
  void read_chunk(std::uint64_t done, std::uint32_t n) {
    std::uint32_t got = 0;
    if (input_ && done < input_frames_) {
      const auto want = static_cast<sf_count_t>(std::min<std::uint64_t>(n, input_frames_ - done));
      const sf_count_t r = sf_readf_float(input_.get(), in_interleaved_.data(), want);
      got = r > 0 ? static_cast<std::uint32_t>(r) : 0;
    }
    const auto ch = static_cast<std::size_t>(input_channels_);
    for (std::size_t i = 0; i < in_planar_.size(); ++i) {
      float* dst = in_planar_[i].data();
      const std::size_t c = ch == 1 ? 0 : i;  // mono feeds every input
      for (std::uint32_t f = 0; f < got; ++f) dst[f] = in_interleaved_[f * ch + c];
      std::fill(dst + got, dst + n, 0.0f);
    }
  }

  bool write_chunk(SNDFILE* out, std::uint32_t n) {
    if (out == nullptr) return true;
    const std::size_t ch = out_planar_.size();
    for (std::size_t j = 0; j < ch; ++j) {
      const float* src = out_planar_[j].data();
      for (std::uint32_t f = 0; f < n; ++f) out_interleaved_[f * ch + j] = src[f];
    }
    if (sf_writef_float(out, out_interleaved_.data(), n) != static_cast<sf_count_t>(n)) {
      fail("writing '" + config_.output_path + "' failed: " + sf_strerror(out));
      return false;
    }
    return true;
  }

  // The worker: file I/O between chunks, cycles in between, no clock.
  void run(AudioCallback& cb, SndfilePtr out) {
    std::uint64_t done = 0;
    bool ok = true;
    while (ok && done < total_frames_ && !stop_requested_.load(std::memory_order_relaxed)) {
      const auto n =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(chunk_frames_, total_frames_ - done));
      read_chunk(done, n);
      std::uint32_t off = 0;
      while (off < n) {
        const std::uint32_t f = std::min(config_.frames, n - off);
        for (std::size_t i = 0; i < in_ptrs_.size(); ++i) in_ptrs_[i] = in_planar_[i].data() + off;
        for (std::size_t j = 0; j < out_ptrs_.size(); ++j)
          out_ptrs_[j] = out_planar_[j].data() + off;
        AudioBlock block;
        block.inputs = {in_ptrs_.data(), in_ptrs_.size()};
        block.outputs = {out_ptrs_.data(), out_ptrs_.size()};
        block.info.frame_time = done + off;
        block.info.start_ns = virtual_ns(done + off);
        block.info.wake_ns = block.info.start_ns;
        block.info.period_ns = virtual_ns(f);
        block.info.frames = f;
        block.info.sample_rate = config_.sample_rate;
        cb.process(block);
        cycles_.fetch_add(1, std::memory_order_relaxed);
        off += f;
        // stop() ends the run at a cycle boundary; what ran is still written.
        if (stop_requested_.load(std::memory_order_relaxed)) break;
      }
      ok = write_chunk(out.get(), off);
      done += off;
    }
    if (out && sf_close(out.release()) != 0 && ok) {
      fail("closing '" + config_.output_path + "' failed");
    }
    if (done == total_frames_ || !ok) finished_.store(true, std::memory_order_release);
  }

  const BackendConfig config_;
  SndfilePtr input_;  // null: silence
  const int input_channels_;
  const std::uint64_t total_frames_;
  const std::uint64_t input_frames_;
  const OutFormat format_;

  mutable std::mutex mutex_;  // control threads
  std::vector<std::string> input_names_, output_names_;
  bool started_ = false;
  std::thread thread_;

  // ---- the worker's, allocated by start() ----
  std::uint32_t chunk_frames_ = 0;
  std::vector<float> in_interleaved_, out_interleaved_;
  std::vector<std::vector<float>> in_planar_, out_planar_;
  std::vector<const float*> in_ptrs_;
  std::vector<float*> out_ptrs_;

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> finished_{false};
  std::atomic<std::uint64_t> cycles_{0};
  mutable std::mutex failure_mutex_;
  std::optional<Error> failure_;
};

}  // namespace

Result<std::unique_ptr<AudioBackend>> open_file_backend(const BackendConfig& config) {
  if (config.sample_rate == 0) return make_error(Errc::kInvalidArgument, "sample rate is 0");
  if (config.frames == 0 || config.frames > kMaxBackendFrames) {
    return make_error(Errc::kInvalidArgument, "period of " + std::to_string(config.frames) +
                                                  " frames is out of range (1.." +
                                                  std::to_string(kMaxBackendFrames) + ")");
  }
  if (auto ok = check_port_names(config); !ok) return std::unexpected(ok.error());
  auto format = output_format(config.output_path);
  if (!format) return std::unexpected(format.error());

  if (config.input_path.empty()) {
    if (config.max_frames == 0) {
      return make_error(Errc::kInvalidArgument,
                        "file backend without an input file needs max_frames (how long to run)");
    }
    return std::unique_ptr<AudioBackend>(
        new FileBackend(config, nullptr, 1, config.max_frames, 0, *format));
  }

  const std::string& path = config.input_path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return make_error(Errc::kNotFound, "input file '" + path + "' does not exist");
  SF_INFO info{};
  SndfilePtr in(sf_open(path.c_str(), SFM_READ, &info));
  if (!in) return make_error(Errc::kIo, "cannot read '" + path + "': " + sf_strerror(nullptr));
  if (info.channels <= 0 || info.samplerate <= 0 || info.frames < 0)
    return make_error(Errc::kParse, "'" + path + "' holds no audio");
  const auto inputs = config.inputs.size();
  if (info.channels != 1 && static_cast<std::size_t>(info.channels) != inputs) {
    return make_error(Errc::kInvalidArgument,
                      "'" + path + "' has " + std::to_string(info.channels) +
                          " channels but the backend has " + std::to_string(inputs) +
                          " inputs: the file must be mono or have one channel per input");
  }
  if (static_cast<std::uint32_t>(info.samplerate) != config.sample_rate) {
    return make_error(Errc::kInvalidArgument,
                      "'" + path + "' is " + std::to_string(info.samplerate) +
                          " Hz but the backend runs at " + std::to_string(config.sample_rate) +
                          " Hz (the file backend does not resample)");
  }
  const auto file_frames = static_cast<std::uint64_t>(info.frames);
  const std::uint64_t total = config.max_frames != 0 ? config.max_frames : file_frames;
  return std::unique_ptr<AudioBackend>(
      new FileBackend(config, std::move(in), info.channels, total, file_frames, *format));
}

}  // namespace jamnet::engine::io
