#pragma once

#include "base/result.h"
#include "checkpoint/checkpointvalue.h"

#include <QByteArray>
#include <QHash>
#include <QList>
#include <QMap>
#include <QString>
#include <QStringList>

#include <atomic>

/// Reading what Python's `torch.load` reads, without libtorch and without running any code.
namespace ifs::ckpt {

/// Where storages go when a file is read: torch.load's `map_location`. In this model a location
/// is only a tag (Storage::device); placing tensors on a device is the training code's job.
struct MapLocation
{
    enum class Mode : quint8 {
        /// Keep a saved location when that device is in availableDevices (or is the CPU),
        /// otherwise the CPU, with a note. The default: a GPU-saved file reads everywhere.
        Automatic,
        /// Every storage keeps its saved location (torch.load without map_location).
        Keep,
        /// Every storage goes to `device` (map_location="cpu" or "cuda:0").
        Device,
        /// Saved locations found in `mapping` go where it says ({"cuda:1": "cuda:0"}); the
        /// others follow the Automatic rule.
        Mapping,
    };

    Mode mode = Mode::Automatic;
    QString device; ///< for Mode::Device
    QHash<QString, QString> mapping; ///< for Mode::Mapping: saved location → location
    /// Devices besides the CPU that exist here ("cuda:0", "cuda:1", "mps"), for Automatic and
    /// Mapping. Empty: a CPU-only machine.
    QStringList availableDevices;

    static MapLocation automatic(const QStringList &availableDevices = {});
    static MapLocation keep();
    static MapLocation to(const QString &device);
    static MapLocation map(const QHash<QString, QString> &mapping,
                           const QStringList &availableDevices = {});

    /// Where a storage saved at `saved` goes. `moved`, when given, says why it does not stay
    /// (empty when it stays or when the caller asked for the move by name).
    QString target(const QString &saved, QString *moved = nullptr) const;
};

/// How readCheckpoint() reads.
struct ReadOptions
{
    /// When tensor data is read.
    enum class TensorData : quint8 {
        /// Before readCheckpoint() returns: every storage is read into memory and checked (its
        /// CRC-32), so that a damaged file gives its error at once and the result no longer
        /// depends on the file.
        Eager,
        /// When first asked for: readCheckpoint() reads the structure (the pickle, the zip's
        /// directory, a safetensors header) and leaves each storage in the file
        /// (Storage::source) until its bytes are wanted (Storage::data(), visitBytes(),
        /// Tensor::contiguousBytes(), statistics, the writers). Inspecting a file then costs no
        /// tensor memory and a zip bomb costs nothing until its data is wanted; the file stays
        /// open while its storages live, and a file changed in the meantime gives an error
        /// when its data is read, never a signal. Legacy files and plain pickles are read
        /// whole either way.
        OnDemand,
    };

    MapLocation map;
    /// Files are read with pread(2), never memory-mapped: a file cut or rewritten in place while
    /// it is read (as torch.save does to an existing file) gives an error, not SIGBUS.
    TensorData tensorData = TensorData::Eager;
    /// Check the CRC-32 of every zip record (torch does). Off: faster on huge files, and a
    /// damaged tensor record reads as garbage instead of giving an error.
    bool verifyChecksums = true;
    /// Bytes that the compressed records of one file may inflate to, in all, counted as they are
    /// inflated into memory (during the read, and later for OnDemand storages); past it the read
    /// or the load fails with a message that says so. Each record is also held to 1 GiB and to
    /// what deflate can reach from its compressed size. 0: defaultMaxInflatedBytes(). torch
    /// writes its records stored, so only re-zipped files (or zip bombs) inflate anything.
    qint64 maxInflatedBytes = 0;
    /// Python objects a pickle may create before it is refused: a memory bound for hostile files
    /// (each object costs about 500 bytes until the Values are built).
    qint64 maxPickleObjects = qint64(1) << 21;
    /// Checked between storages; when set the read ends with an ErrorCode::Cancelled error.
    const std::atomic_bool *cancel = nullptr;
};

/// ReadOptions::maxInflatedBytes's default: a quarter of the physical memory, and at most half
/// of the address space this process may use (RLIMIT_AS) when that is limited.
qint64 defaultMaxInflatedBytes();

enum class CheckpointFormat : quint8 {
    Zip, ///< torch.save since PyTorch 1.6
    Legacy, ///< torch.save before 1.6 (or _use_new_zipfile_serialization=False)
    TorchScript, ///< torch.jit.save; root is the module's state dict
    Safetensors, ///< Hugging Face's safetensors; root is an OrderedDict of tensors
    Pickle, ///< a plain pickle (pickle.dump), without torch's container
};

/// "zip", "legacy", "TorchScript", "safetensors", "pickle".
QString formatName(CheckpointFormat format);

/// One storage of a file: what torch.load's map_location sees.
struct StorageInfo
{
    QString key; ///< the record name in the file ("0", "140234..."; tensor name for safetensors)
    DType dtype = DType::Float32;
    qint64 numel = 0;
    QString savedLocation; ///< where it was saved: "cpu", "cuda:0"
    QString location; ///< where it is now (after map_location)
};

/// What readCheckpoint() read.
struct CheckpointFile
{
    CheckpointFormat format = CheckpointFormat::Zip;
    /// The object torch.load returns. Objects of classes the reader does not know are inert
    /// Values (Value::object); nothing was executed.
    Value root;
    /// What was not read as torch would: inert objects, ignored state, unsupported tensor types,
    /// each with its place (`root["hyper_parameters"]["args"]: argparse.Namespace kept as ...`).
    QStringList warnings;
    /// Facts worth telling: storages moved off a device that is missing here, a whole pickled
    /// nn.Module, the legacy format, big-endian data swapped.
    QStringList notes;
    /// Every storage, in the order the file names them.
    QList<StorageInfo> storages;
    /// The zip's folder name ("archive", or the file's stem for torch 1.6–1.13).
    QString archiveName;
    /// The pickle protocol of the main pickle (2 by default).
    int pickleProtocol = 0;
    /// safetensors: the `__metadata__` strings.
    QMap<QString, QString> metadata;
    /// TorchScript: the module tree as inert objects (`__torch__.*` classes with their
    /// attributes), root holds its state dict.
    Value scriptModule;

    /// The distinct saved locations, in order of first appearance.
    QStringList savedLocations() const;
};

/// Reads a checkpoint the way Python's `torch.load(path, map_location=...)` does: the zip format
/// (any archive folder, little- or big-endian, ZIP64, stored or deflated records), the legacy
/// format, TorchScript archives (their parameters and buffers, as a state dict), safetensors and
/// plain pickles, whatever the file's extension (.pt, .pth, .tar, .ckpt, .bin). Pickle protocols
/// 2 to 5, with every opcode of protocols 0 to 5.
///
/// Never executes anything: no module is imported, no function a pickle names is called. Unknown
/// classes and calls become inert Objects and a warning. Tensors keep their views, strides and
/// storage sharing (the same StoragePtr); a file's storages share the one buffer it was read into
/// (or are left in the file with ReadOptions::TensorData::OnDemand).
/// Hostile or broken files give an error that names the file and the reason, e.g. "Cannot read
/// checkpoint “a.pt”: the file ends early: it was probably not fully written or downloaded";
/// sizes are checked before anything is allocated. What is not a regular file (a FIFO, a
/// device, a folder) is refused before it is opened in a way that could block. Safe to call
/// from a worker thread.
Result<CheckpointFile> readCheckpoint(const QString &path, const ReadOptions &options = {});

/// The same for a file already in memory (tests, fuzzers, downloads). Storages point into `data`
/// and keep its buffer alive (not one made with QByteArray::fromRawData: that memory must outlive
/// them); with TensorData::OnDemand compressed records are inflated when first read. `name` is
/// shown in errors.
Result<CheckpointFile> readCheckpoint(const QByteArray &data, const ReadOptions &options = {},
                                      const QString &name = QStringLiteral("<memory>"));

/// Relabels the storage of every tensor under `root` as `map` says (Storage::device), in place:
/// the storages are shared, so every Value that holds them sees the change. Returns notes for
/// storages moved off a missing device.
QStringList applyMapLocation(const Value &root, const MapLocation &map);

/// The storages of every tensor under `root`, once each, in order of first appearance.
QList<StoragePtr> storagesOf(const Value &root);

/// Model weights found in a checkpoint.
struct StateDict
{
    /// An OrderedDict of name → Tensor.
    Value tensors;
    /// Where they were found: "root", `root["state_dict"]`, or "a pickled torch.nn.Module".
    QString source;
    QStringList notes;
};

/// Finds the model weights in what a checkpoint holds: a state dict itself, one under a usual key
/// (`state_dict` as Lightning writes it, `model_state_dict`, `model`, `module`, `net`, ...), or a
/// whole pickled torch.nn.Module (`torch.save(model)`), whose `_parameters`, persistent
/// `_buffers` and `_modules` give the same names and order as `model.state_dict()` (plain
/// tensors, as state_dict() detaches them). The error says what the checkpoint holds instead.
Result<StateDict> extractStateDict(const Value &root);

/// A copy of an OrderedDict/Dict state dict without `prefix` on its keys (DataParallel's
/// "module."); keys without the prefix stay as they are.
Value stripKeyPrefix(const Value &stateDict, const QString &prefix);

/// How convertCheckpoint() converts.
struct ConvertOptions
{
    ReadOptions read;
    /// Extra `__metadata__` for a safetensors target ("format": "pt" is always written).
    QMap<QString, QString> metadata;
};

/// Converts a checkpoint to another format, chosen by the target's extension: `.safetensors`
/// gets the model weights (extractStateDict()), anything else a torch.save zip of what the source
/// holds (its state dict for TorchScript and safetensors sources). Returns notes (weights found
/// under a key, shared tensors written twice to safetensors, ...).
Result<QStringList> convertCheckpoint(const QString &source, const QString &target,
                                      const ConvertOptions &options = {});

} // namespace ifs::ckpt
