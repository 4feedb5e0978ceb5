#include "checkpoint/checkpointreader.h"

#include "checkpoint/checkpointfiles.h"
#include "checkpoint/checkpointwalk.h"
#include "checkpoint/checkpointwriter.h"
#include "checkpoint/detail/filesource.h"
#include "checkpoint/detail/pickleunpickler.h"
#include "checkpoint/detail/zipreader.h"
#include "checkpoint/safetensors.h"

#include <QRegularExpression>
#include <QSet>
#include <QStringDecoder>
#include <QtEndian>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_set>

namespace ifs::ckpt {

using detail::ByteSource;
using detail::FileStorageSource;
using detail::InflateBudget;
using detail::PersistentValue;
using detail::StorageRef;
using detail::Unpickled;
using detail::UnpickleOptions;
using detail::ZipReader;
using detail::ZipRecord;

// --- MapLocation -------------------------------------------------------------------------------

MapLocation MapLocation::automatic(const QStringList &availableDevices)
{
    MapLocation map;
    map.availableDevices = availableDevices;
    return map;
}

MapLocation MapLocation::keep()
{
    MapLocation map;
    map.mode = Mode::Keep;
    return map;
}

MapLocation MapLocation::to(const QString &device)
{
    MapLocation map;
    map.mode = Mode::Device;
    map.device = device;
    return map;
}

MapLocation MapLocation::map(const QHash<QString, QString> &mapping,
                             const QStringList &availableDevices)
{
    MapLocation map;
    map.mode = Mode::Mapping;
    map.mapping = mapping;
    map.availableDevices = availableDevices;
    return map;
}

QString MapLocation::target(const QString &saved, QString *moved) const
{
    if (moved)
        moved->clear();
    switch (mode) {
    case Mode::Keep:
        return saved;
    case Mode::Device:
        return device.isEmpty() ? QStringLiteral("cpu") : device;
    case Mode::Mapping:
        if (const auto it = mapping.constFind(saved); it != mapping.constEnd())
            return *it;
        break;
    case Mode::Automatic:
        break;
    }
    if (saved.isEmpty() || saved == u"cpu")
        return QStringLiteral("cpu");
    // "cuda" without an index means the current device: any device of that type will do.
    const bool present = availableDevices.contains(saved)
        || (!saved.contains(u':')
            && std::any_of(availableDevices.begin(), availableDevices.end(),
                           [&](const QString &d) { return d.startsWith(saved + u':'); }));
    if (present)
        return saved;
    if (moved)
        *moved = QStringLiteral("there is no %1 here").arg(saved);
    return QStringLiteral("cpu");
}

QString formatName(CheckpointFormat format)
{
    switch (format) {
    case CheckpointFormat::Zip:
        return QStringLiteral("zip");
    case CheckpointFormat::Legacy:
        return QStringLiteral("legacy");
    case CheckpointFormat::TorchScript:
        return QStringLiteral("TorchScript");
    case CheckpointFormat::Safetensors:
        return QStringLiteral("safetensors");
    case CheckpointFormat::Pickle:
        return QStringLiteral("pickle");
    }
    return QString();
}

QStringList CheckpointFile::savedLocations() const
{
    QStringList locations;
    for (const StorageInfo &info : storages) {
        if (!locations.contains(info.savedLocation))
            locations.append(info.savedLocation);
    }
    return locations;
}

namespace {

constexpr char kLegacyMagic[] = "\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
constexpr qint64 kLegacyProtocolVersion = 1001;
// A data.pkl larger than this is not a checkpoint's pickle but a damaged or hostile file.
constexpr qint64 kMaxPickleSize = qint64(1) << 31;
constexpr int kMaxNestedLoads = 1;

QString truncatedMessage()
{
    return QStringLiteral("the file ends early: it was probably not fully written or downloaded");
}

bool checkedMul(qint64 a, qint64 b, qint64 *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/// A copy of little-endian elements from the other byte order.
QByteArray byteSwapped(const char *data, qint64 size, DType dtype)
{
    QByteArray out(data, qsizetype(size));
    const int itemSize = elementSize(dtype);
    const int part
        = (dtype == DType::Complex64 || dtype == DType::Complex128) ? itemSize / 2 : itemSize;
    if (part > 1) {
        char *p = out.data();
        for (qsizetype i = 0; i + part <= out.size(); i += part)
            std::reverse(p + i, p + i + part);
    }
    return out;
}

/// The dtype a pickled storage class stands for, as torch.load's find_class decides: any name
/// with "Storage" in it (torch.FloatStorage, torch.cuda.HalfStorage), UntypedStorage as bytes.
std::optional<DType> storageDType(const Value &cls, QString *name)
{
    *name = cls.isObject() ? cls.objectModule() + u'.' + cls.objectName() : cls.typeName();
    if (!cls.isObject())
        return std::nullopt;
    const QString className = cls.objectName();
    if (className == u"UntypedStorage" || className == u"_UntypedStorage")
        return DType::UInt8;
    return dtypeFromStorageClass(className);
}

QString textOf(const Value &value)
{
    return value.isBytes() ? QString::fromLatin1(value.toBytes()) : value.toString();
}

Tensor detached(Tensor tensor)
{
    tensor.parameter = false;
    tensor.requiresGrad = false;
    return tensor;
}

struct Buffer
{
    const char *data = nullptr;
    qint64 size = 0;
    std::shared_ptr<const void> keepAlive;
};

// --- The reader ----------------------------------------------------------------------------------

class Reader
{
public:
    /// `name` is the file's, for the errors of storages loaded later.
    Reader(const ReadOptions &options, const QString &name)
        : m_options(options)
        , m_name(name)
        , m_budget(std::make_shared<InflateBudget>(
              options.maxInflatedBytes > 0 ? options.maxInflatedBytes : defaultMaxInflatedBytes()))
    { }

    /// A file in memory, whatever its format.
    Result<CheckpointFile> read(const Buffer &buffer);
    /// A file on disk: its structure only with TensorData::OnDemand where the format allows,
    /// otherwise the whole file read into memory.
    Result<CheckpointFile> readFile(const std::shared_ptr<const ByteSource> &file);

private:
    Result<CheckpointFile> readZip(const std::shared_ptr<const ByteSource> &source);
    Result<CheckpointFile> readSafetensorsOnDemand(const std::shared_ptr<const ByteSource> &file);
    /// A storage of the zip: its bytes now, or its place in the file for later.
    Status fillStorage(Storage &storage, const ZipReader &zip, const ZipRecord &record,
                       qint64 needed, std::vector<detail::PendingCrc> &pendingCrcs);
    bool onDemand() const { return m_options.tensorData == ReadOptions::TensorData::OnDemand; }
    Status readTorchScript(const ZipReader &zip, const QString &prefix);
    /// A legacy stream at `data[start]`; `nested` for torch.storage._load_from_bytes.
    Result<Value> readLegacy(const Buffer &buffer, qint64 start, bool nested,
                             StorageRef *single = nullptr);
    /// The storages a legacy pickle names, by key, and the views of very old files.
    struct LegacyStorages
    {
        struct Root
        {
            StoragePtr storage;
            qint64 numel = 0;
        };
        QHash<QString, Root> roots;
        QHash<QString, StorageRef> views;
        QStringList order;
    };
    Result<qint64> readLegacyHeader(const Buffer &buffer, qint64 start, bool nested);
    Result<PersistentValue> loadLegacyStorage(LegacyStorages &storages, const Value &pid,
                                              qint64 fileSize);
    Status readLegacyData(const Buffer &buffer, LegacyStorages &storages, qint64 at);
    Result<CheckpointFile> readPlainPickle(const Buffer &buffer);
    Result<StorageRef> loadFromBytes(const QByteArray &bytes);

    StoragePtr newStorage(const QString &key, DType dtype, qint64 numel, const QString &saved);
    bool cancelled() const { return m_options.cancel && m_options.cancel->load(); }
    UnpickleOptions unpickleOptions(const QString &name);
    void addUnpickled(const Unpickled &unpickled);
    void finish();

    const ReadOptions &m_options;
    const QString m_name;
    std::shared_ptr<InflateBudget> m_budget;
    CheckpointFile m_file;
    std::map<std::pair<QString, QString>, int> m_moved;
    int m_nested = 0;
    bool m_bigEndian = false;
};

Result<CheckpointFile> Reader::read(const Buffer &buffer)
{
    const char *data = buffer.data;
    const qint64 size = buffer.size;
    if (size == 0)
        return Error{QStringLiteral("the file is empty")};
    const QByteArray head(data, qsizetype(std::min<qint64>(size, 512)));

    if (head.startsWith("PK\x03\x04") || head.startsWith("PK\x05\x06")
        || (size < 4 && QByteArrayView("PK\x03\x04").startsWith(head))) {
        return readZip(ByteSource::fromBuffer(buffer.data, buffer.size, buffer.keepAlive));
    }
    if (quint8(head[0]) == 0x80 && (head.size() < 2 || (head[1] >= 2 && head[1] <= 5))) {
        // The legacy format starts with a pickled magic number; protocol 4 and 5 put a FRAME
        // before it.
        const qsizetype skip = head.size() > 2 && quint8(head[2]) == 0x95 ? 11 : 2;
        if (head.mid(skip).startsWith(QByteArray(kLegacyMagic, sizeof kLegacyMagic - 1))) {
            Result<Value> root = readLegacy(buffer, 0, false);
            if (!root)
                return root.error();
            m_file.format = CheckpointFormat::Legacy;
            m_file.root = std::move(root).value();
            m_file.notes.append(QStringLiteral("saved in the legacy format (PyTorch before 1.6, "
                                               "or _use_new_zipfile_serialization=False)"));
            finish();
            return std::move(m_file);
        }
        return readPlainPickle(buffer);
    }
    if (detail::looksLikeSafetensors(data, size)) {
        const std::shared_ptr<const void> keepAlive = buffer.keepAlive;
        const auto attach
            = [data, keepAlive](Storage &storage, const QString &, qint64 offset, qint64 length) {
                  storage.bytes = QByteArray::fromRawData(data + offset, qsizetype(length));
                  storage.keepAlive = keepAlive;
              };
        return detail::readSafetensorsBuffer(data, size, size, attach, m_options);
    }
    if (size >= 262 && head.mid(257, 5) == "ustar") {
        return Error{QStringLiteral("a tar archive: the tar checkpoints of PyTorch before 0.4 are "
                                    "not supported (load and re-save it with a current PyTorch)")};
    }
    if (head.startsWith("\x1f\x8b"))
        return Error{QStringLiteral("a gzip-compressed file: decompress it first")};
    if (head.startsWith("version https://git-lfs"))
        return Error{QStringLiteral("a Git LFS pointer, not the file itself: fetch it with "
                                    "“git lfs pull”")};
    const QByteArray lower = head.trimmed().toLower();
    if (lower.startsWith("<!doctype html") || lower.startsWith("<html")
        || lower.contains("<html")) {
        return Error{QStringLiteral("an HTML page, not a checkpoint: the download probably saved "
                                    "an error or login page")};
    }
    QStringDecoder utf8(QStringDecoder::Utf8);
    const QString decoded = utf8.decode(head.left(head.size() == 512 ? 500 : head.size()));
    const bool text = !utf8.hasError() && std::all_of(head.begin(), head.end(), [](char c) {
        const uchar u = uchar(c);
        return u >= 0x20 || c == '\n' || c == '\r' || c == '\t';
    });
    if (text) {
        return Error{QStringLiteral("a text file, not a checkpoint (it starts with “%1”)")
                         .arg(decoded.left(40).simplified())};
    }
    if (size >= 4 && head.startsWith("PK"))
        return Error{QStringLiteral("a damaged zip archive")};
    return Error{QStringLiteral("not a PyTorch checkpoint (unknown format: it starts with %1)")
                     .arg(QString::fromLatin1(head.left(8).toHex(' ')))};
}

StoragePtr Reader::newStorage(const QString &key, DType dtype, qint64 numel, const QString &saved)
{
    auto storage = std::make_shared<Storage>();
    storage->dtype = dtype;
    QString moved;
    storage->device = m_options.map.target(saved, &moved);
    if (!moved.isEmpty())
        ++m_moved[{saved, storage->device}];
    m_file.storages.append({key, dtype, numel, saved, storage->device});
    return storage;
}

UnpickleOptions Reader::unpickleOptions(const QString &name)
{
    UnpickleOptions options;
    options.name = name;
    options.endIsEndOfFile = true;
    options.maxObjects = m_options.maxPickleObjects;
    options.loadFromBytes = [this](const QByteArray &bytes) {
        return loadFromBytes(bytes);
    };
    return options;
}

void Reader::addUnpickled(const Unpickled &unpickled)
{
    m_file.warnings += unpickled.warnings;
    if (!unpickled.moduleClasses.isEmpty()) {
        m_file.notes.append(QStringLiteral("the file holds a whole pickled torch.nn.Module (%1): "
                                           "its weights are read from its parameters and "
                                           "buffers, its code is not run. Saving "
                                           "model.state_dict() is the better habit: such a file "
                                           "does not depend on the model's source code")
                                .arg(unpickled.moduleClasses.size() > 6
                                         ? unpickled.moduleClasses.mid(0, 6).join(u", ") + u", ..."
                                         : unpickled.moduleClasses.join(u", ")));
    }
}

void Reader::finish()
{
    for (const auto &[move, count] : m_moved) {
        m_file.notes.append(
            QStringLiteral("%1 saved on %2 read onto %3: there is no %2 here")
                .arg(count == 1 ? QStringLiteral("1 storage")
                                : QStringLiteral("%1 storages").arg(count),
                     move.first, move.second == u"cpu" ? QStringLiteral("the CPU") : move.second));
    }
    if (m_bigEndian)
        m_file.notes.append(QStringLiteral("big-endian tensor data converted to little-endian"));
}

// --- zip -----------------------------------------------------------------------------------------

Result<CheckpointFile> Reader::readFile(const std::shared_ptr<const ByteSource> &file)
{
    if (onDemand() && file->size() > 0) {
        Result<QByteArray> head = file->read(0, std::min<qint64>(file->size(), 512));
        if (!head)
            return head.error();
        if (head->startsWith("PK\x03\x04") || head->startsWith("PK\x05\x06"))
            return readZip(file);
        if (detail::looksLikeSafetensors(head->constData(), head->size()))
            return readSafetensorsOnDemand(file);
    }
    Result<detail::ByteSource::HeldBytes> bytes = file->readAll();
    if (!bytes)
        return bytes.error();
    return read(Buffer{bytes->data, bytes->size, std::move(bytes->keepAlive)});
}

Result<CheckpointFile>
Reader::readSafetensorsOnDemand(const std::shared_ptr<const ByteSource> &file)
{
    char first8[8];
    if (Status status = file->read(0, first8, std::min<qint64>(8, file->size())); !status)
        return status.error();
    Result<QByteArray> header = file->read(0, detail::safetensorsHeaderBytes(first8, file->size()));
    if (!header)
        return header.error();
    const auto attach = [&](Storage &storage, const QString &name, qint64 offset, qint64 length) {
        detail::RecordRange range;
        range.name = name;
        range.offset = offset;
        range.compressedSize = length;
        range.size = length;
        storage.source
            = std::make_shared<FileStorageSource>(file, std::move(range), length, nullptr, m_name);
    };
    return detail::readSafetensorsBuffer(header->constData(), header->size(), file->size(), attach,
                                         m_options);
}

Status Reader::fillStorage(Storage &storage, const ZipReader &zip, const ZipRecord &record,
                           qint64 needed, std::vector<detail::PendingCrc> &pendingCrcs)
{
    if (needed == 0)
        return success(); // no pointer into the file for an empty storage
    const bool verify = m_options.verifyChecksums;
    if (onDemand() && !m_bigEndian) {
        storage.source = std::make_shared<FileStorageSource>(
            zip.source(), ZipReader::range(record, verify), needed, m_budget, m_name);
        return success();
    }
    if (record.method != 0) {
        if (Status status = m_budget->take(record.size, record.name); !status)
            return status;
    }
    // Stored records of a buffer are checked all at once after the pickle, in parallel.
    const bool inMemory = record.method == 0 && zip.source()->memory();
    const bool later = verify && inMemory;
    Result<QByteArray> bytes = zip.read(record, verify && !later);
    if (!bytes)
        return bytes.error();
    if (later)
        pendingCrcs.push_back({&record, bytes.value().constData()});
    if (m_bigEndian) {
        storage.bytes = byteSwapped(bytes.value().constData(), needed, storage.dtype);
    } else if (inMemory) {
        storage.bytes = QByteArray::fromRawData(bytes.value().constData(), needed);
        storage.keepAlive = zip.source()->keepAlive();
    } else {
        storage.bytes = bytes.value().left(needed);
    }
    return success();
}

Result<CheckpointFile> Reader::readZip(const std::shared_ptr<const ByteSource> &source)
{
    Result<ZipReader> opened = ZipReader::open(source);
    if (!opened)
        return opened.error();
    const ZipReader &zip = opened.value();
    if (zip.records().isEmpty())
        return Error{QStringLiteral("an empty zip archive, not a PyTorch checkpoint")};

    // torch takes the folder of the first record as the archive's name.
    QString prefix = zip.records().front().name.section(u'/', 0, 0);
    if (!zip.find(prefix + u"/data.pkl")) {
        prefix.clear();
        for (const ZipRecord &record : zip.records()) {
            if (record.name.endsWith(u"/data.pkl") && record.name.count(u'/') == 1) {
                prefix = record.name.section(u'/', 0, 0);
                break;
            }
        }
        if (prefix.isEmpty()) {
            return Error{QStringLiteral("a zip archive without data.pkl: not a PyTorch "
                                        "checkpoint")};
        }
    }
    m_file.archiveName = prefix;
    const bool script = zip.find(prefix + u"/constants.pkl")
        || std::any_of(zip.records().begin(), zip.records().end(),
                       [&](const ZipRecord &r) { return r.name.startsWith(prefix + u"/code/"); });
    m_file.format = script ? CheckpointFormat::TorchScript : CheckpointFormat::Zip;

    if (const ZipRecord *record = zip.find(prefix + u"/byteorder")) {
        Result<QByteArray> order = zip.read(*record, m_options.verifyChecksums, 64);
        if (!order)
            return order.error();
        const QByteArray text = order.value().trimmed();
        if (text == "big")
            m_bigEndian = true;
        else if (text != "little")
            return Error{QStringLiteral("unknown byte order “%1”").arg(QString::fromUtf8(text))};
    }

    const ZipRecord *pickle = zip.find(prefix + u"/data.pkl");
    if (pickle->method != 0 && pickle->size <= kMaxPickleSize) {
        // A compressed pickle inflates into memory too: it counts against the budget.
        if (Status status = m_budget->take(pickle->size, pickle->name); !status)
            return status.error();
    }
    Result<QByteArray> pickleBytes = zip.read(*pickle, m_options.verifyChecksums, kMaxPickleSize);
    if (!pickleBytes)
        return pickleBytes.error();

    QHash<QString, StorageRef> loaded;
    std::vector<detail::PendingCrc> pendingCrcs;
    UnpickleOptions options = unpickleOptions(QStringLiteral("the pickle data.pkl"));
    options.endIsEndOfFile = false;
    options.persistentLoad = [&](const Value &pid) -> Result<PersistentValue> {
        if (cancelled())
            return Error{QStringLiteral("cancelled"), ErrorCode::Cancelled};
        if (!pid.isTuple() || pid.size() < 5 || textOf(pid.at(0)) != u"storage") {
            return Error{QStringLiteral("data.pkl names a persistent object that is not a "
                                        "storage")};
        }
        QString className;
        const std::optional<DType> dtype = storageDType(pid.at(1), &className);
        const Value keyValue = pid.at(2);
        const QString key = keyValue.isInt() ? QString::number(keyValue.toInt()) : textOf(keyValue);
        const QString location = textOf(pid.at(3));
        if (!pid.at(4).isInt() || pid.at(4).toInt() < 0 || key.isEmpty())
            return Error{QStringLiteral("data.pkl names storage “%1” with no valid size").arg(key)};
        const qint64 numel = pid.at(4).toInt();
        if (!dtype) {
            PersistentValue unsupported;
            unsupported.value = Value::object(
                pid.at(1).objectModule(), pid.at(1).objectName(),
                Value::tuple({Value(QStringLiteral("a tensor of storage type %1, which is not "
                                                   "supported")
                                        .arg(className))}));
            return unsupported;
        }
        if (const auto it = loaded.constFind(key); it != loaded.constEnd()) {
            if (it->storage->dtype != *dtype) {
                return Error{QStringLiteral("storage “%1” is named both as %2 and as %3")
                                 .arg(key, dtypeName(it->storage->dtype), dtypeName(*dtype))};
            }
            return PersistentValue{*it, Value()};
        }
        const ZipRecord *record = zip.find(prefix + u"/data/" + key);
        if (!record) {
            return Error{
                QStringLiteral("the record of storage “%1” (data/%1) is missing").arg(key)};
        }
        qint64 needed = 0;
        if (!checkedMul(numel, elementSize(*dtype), &needed) || record->size < needed) {
            return Error{QStringLiteral("storage “%1” claims %2 %3 elements but its record holds "
                                        "%4 bytes")
                             .arg(key)
                             .arg(numel)
                             .arg(dtypeName(*dtype))
                             .arg(record->size)};
        }
        StoragePtr storage = newStorage(key, *dtype, numel, location);
        if (Status status = fillStorage(*storage, zip, *record, needed, pendingCrcs); !status)
            return status.error();
        if (record->size > needed) {
            m_file.warnings.append(QStringLiteral("storage “%1”: its record holds %2 bytes, more "
                                                  "than its %3 elements; the rest was ignored")
                                       .arg(key)
                                       .arg(record->size)
                                       .arg(numel));
        }
        StorageRef ref{storage, 0, numel};
        loaded.insert(key, ref);
        return PersistentValue{ref, Value()};
    };

    Result<Unpickled> unpickled
        = detail::unpickle(pickleBytes.value().constData(), pickleBytes.value().size(), 0, options);
    if (!unpickled)
        return unpickled.error();
    if (const ZipRecord *damaged = detail::firstCrcMismatch(pendingCrcs, m_options.cancel)) {
        return Error{QStringLiteral("record “%1” is damaged (its CRC-32 checksum does not match)")
                         .arg(damaged->name)};
    }
    if (cancelled())
        return Error{QStringLiteral("cancelled"), ErrorCode::Cancelled};
    addUnpickled(unpickled.value());
    m_file.root = unpickled.value().value;
    m_file.pickleProtocol = unpickled.value().protocol;
    if (script) {
        if (Status status = readTorchScript(zip, prefix); !status)
            return status.error();
    }
    finish();
    return std::move(m_file);
}

/// The `__parameters__` and `__buffers__` a TorchScript class's code declares.
struct ScriptClass
{
    bool known = false;
    bool module = true;
    QStringList parameters;
    QStringList buffers;
};

QStringList quotedNames(const QString &list)
{
    QStringList names;
    static const QRegularExpression quoted(QStringLiteral("\"([^\"]*)\""));
    for (const QRegularExpressionMatch &match : quoted.globalMatch(list))
        names.append(match.captured(1));
    return names;
}

ScriptClass scriptClass(const ZipReader &zip, const QString &prefix, const QString &module,
                        const QString &name, bool verify, InflateBudget &budget,
                        QHash<QString, QString> *sources)
{
    ScriptClass info;
    const QString path = prefix + u"/code/" + QString(module).replace(u'.', u'/') + u".py";
    if (!sources->contains(path)) {
        QString text;
        const ZipRecord *record = zip.find(path);
        constexpr qint64 kMaxCode = qint64(64) << 20;
        // Compressed code counts against the inflation budget; code past it is not read (the
        // class's tensors are then all taken as weights, as for code that is missing).
        if (record
            && (record->method == 0 || record->size > kMaxCode
                || budget.take(record->size, record->name).ok())) {
            Result<QByteArray> bytes = zip.read(*record, verify, kMaxCode);
            if (bytes)
                text = QString::fromUtf8(bytes.value());
        }
        sources->insert(path, text);
    }
    const QString source = sources->value(path);
    const QStringList lines = source.split(u'\n');
    bool inside = false;
    for (const QString &line : lines) {
        if (line.startsWith(u"class ")) {
            if (inside)
                break;
            const QString header = line.mid(6);
            if (header.startsWith(name + u'(') || header.startsWith(name + u':')) {
                inside = true;
                info.known = true;
                info.module = header.startsWith(name + u"(Module)");
            }
            continue;
        }
        if (!inside)
            continue;
        const QString trimmed = line.trimmed();
        if (trimmed.startsWith(u"__parameters__ = "))
            info.parameters = quotedNames(trimmed);
        else if (trimmed.startsWith(u"__buffers__ = "))
            info.buffers = quotedNames(trimmed);
    }
    return info;
}

Status Reader::readTorchScript(const ZipReader &zip, const QString &prefix)
{
    const Value module = m_file.root;
    if (!module.isObject() || !module.objectModule().startsWith(u"__torch__")) {
        return Error{QStringLiteral("a TorchScript archive whose data.pkl holds %1, not a "
                                    "scripted module")
                         .arg(module.typeName())};
    }
    QHash<QString, QString> sources;
    Value::Entries entries;
    bool guessed = false;
    // Module.state_dict() order: parameters, buffers, then each submodule, depth first.
    const std::function<void(const Value &, const QString &, int)> flatten
        = [&](const Value &object, const QString &path, int depth) {
              if (depth > 200)
                  return;
              const ScriptClass info
                  = scriptClass(zip, prefix, object.objectModule(), object.objectName(),
                                m_options.verifyChecksums, *m_budget, &sources);
              guessed = guessed || !info.known;
              const Value state = object.state();
              const Value::Entries &attributes = state.entries();
              const auto addTensors = [&](const QStringList *names) {
                  for (const Value::Entry &entry : attributes) {
                      if (!entry.second.isTensor())
                          continue;
                      if (names && !names->contains(entry.first.toString()))
                          continue;
                      entries.append({Value(path + entry.first.toString()),
                                      Value(detached(entry.second.toTensor()))});
                  }
              };
              if (info.known) {
                  addTensors(&info.parameters);
                  addTensors(&info.buffers);
              } else {
                  addTensors(nullptr);
              }
              for (const Value::Entry &entry : attributes) {
                  const Value &child = entry.second;
                  if (!child.isObject() || !child.objectModule().startsWith(u"__torch__"))
                      continue;
                  if (info.known) {
                      const ScriptClass childInfo
                          = scriptClass(zip, prefix, child.objectModule(), child.objectName(),
                                        m_options.verifyChecksums, *m_budget, &sources);
                      if (childInfo.known && !childInfo.module)
                          continue;
                  }
                  flatten(child, path + entry.first.toString() + u'.', depth + 1);
              }
          };
    flatten(module, QString(), 0);
    m_file.scriptModule = module;
    m_file.root = Value::orderedDict(std::move(entries));
    m_file.notes.append(QStringLiteral("a TorchScript archive (torch.jit.save) of %1: read as "
                                       "its state dict (parameters and buffers); its code is not "
                                       "run")
                            .arg(module.typeName()));
    if (guessed) {
        m_file.notes.append(QStringLiteral("some TorchScript classes have no readable code: all "
                                           "their tensor attributes were taken as weights"));
    }
    return success();
}

// --- legacy --------------------------------------------------------------------------------------

/// The three small pickles before a legacy file's main one: the magic number, the protocol
/// version and the system info. Returns where the main pickle starts.
Result<qint64> Reader::readLegacyHeader(const Buffer &buffer, qint64 start, bool nested)
{
    const char *data = buffer.data;
    const qint64 size = buffer.size;
    UnpickleOptions plain = unpickleOptions(QStringLiteral("the legacy header"));
    plain.loadFromBytes = nullptr;

    Result<Unpickled> magic = detail::unpickle(data, size, start, plain);
    if (!magic)
        return magic.error();
    const Value &magicValue = magic.value().value;
    if (!(magicValue.isObject()
          && magicValue.objectArgs().at(0).toString() == u"0x1950a86a20f9469cfc6c")) {
        return Error{QStringLiteral("not a PyTorch checkpoint: the legacy magic number is "
                                    "missing")};
    }
    Result<Unpickled> protocol = detail::unpickle(data, size, magic.value().end, plain);
    if (!protocol)
        return protocol.error();
    if (protocol.value().value.toInt() != kLegacyProtocolVersion || !protocol.value().value.isInt())
        return Error{QStringLiteral("unknown legacy protocol version")};
    Result<Unpickled> sysInfo = detail::unpickle(data, size, protocol.value().end, plain);
    if (!sysInfo)
        return sysInfo.error();
    const Value *littleEndian = sysInfo.value().value.find(u"little_endian");
    if (littleEndian && littleEndian->isBool() && !littleEndian->toBool() && !nested) {
        m_file.notes.append(QStringLiteral("saved on a big-endian machine (torch wrote the "
                                           "tensor data little-endian)"));
    }
    return sysInfo.value().end;
}

/// A legacy persistent id: `('storage', cls, key, location, numel, view)`, or `('module', cls,
/// file, source)`. The storage's data comes after the pickle; here it is only named.
Result<PersistentValue> Reader::loadLegacyStorage(LegacyStorages &storages, const Value &pid,
                                                  qint64 fileSize)
{
    if (cancelled())
        return Error{QStringLiteral("cancelled"), ErrorCode::Cancelled};
    const QString type = pid.isTuple() ? textOf(pid.at(0)) : QString();
    if (type == u"module" && pid.size() >= 2)
        return PersistentValue{std::nullopt, pid.at(1)};
    if (type != u"storage" || pid.size() < 6) {
        return Error{QStringLiteral("the pickle names a persistent object that is not a "
                                    "storage")};
    }
    QString className;
    const std::optional<DType> dtype = storageDType(pid.at(1), &className);
    if (!dtype) {
        return Error{QStringLiteral("storage type %1 is not supported (its data cannot be "
                                    "skipped in the legacy format)")
                         .arg(className)};
    }
    const Value rootKey = pid.at(2);
    const QString key = rootKey.isInt() ? QString::number(rootKey.toInt()) : textOf(rootKey);
    const QString location = textOf(pid.at(3));
    if (!pid.at(4).isInt() || pid.at(4).toInt() < 0)
        return Error{QStringLiteral("storage “%1” has no valid size").arg(key)};
    const qint64 numel = pid.at(4).toInt();
    qint64 bytes = 0;
    if (!checkedMul(numel, elementSize(*dtype), &bytes) || bytes > fileSize) {
        return Error{truncatedMessage()
                     + QStringLiteral(" (storage “%1” claims %2 elements, more than the file "
                                      "holds)")
                           .arg(key)
                           .arg(numel)};
    }
    auto it = storages.roots.find(key);
    if (it == storages.roots.end()) {
        it = storages.roots.insert(
            key, LegacyStorages::Root{newStorage(key, *dtype, numel, location), numel});
        storages.order.append(key);
    } else if (it->storage->dtype != *dtype || it->numel != numel) {
        return Error{QStringLiteral("storage “%1” is named with two types or sizes").arg(key)};
    }
    const Value view = pid.at(5);
    if (view.isNone())
        return PersistentValue{StorageRef{it->storage, 0, numel}, Value()};
    // (view_key, offset, size): a storage view of very old files.
    if (!view.isTuple() || view.size() < 3 || !view.at(1).isInt() || !view.at(2).isInt())
        return Error{QStringLiteral("storage “%1” has an invalid view").arg(key)};
    const QString viewKey
        = view.at(0).isInt() ? QString::number(view.at(0).toInt()) : textOf(view.at(0));
    const qint64 offset = view.at(1).toInt();
    const qint64 viewSize = view.at(2).toInt();
    if (offset < 0 || viewSize < 0 || offset > numel || viewSize > numel - offset)
        return Error{QStringLiteral("storage view “%1” lies outside its storage").arg(viewKey)};
    if (!storages.views.contains(viewKey))
        storages.views.insert(viewKey, StorageRef{it->storage, offset, viewSize});
    return PersistentValue{storages.views.value(viewKey), Value()};
}

/// The storages' data after the main pickle: a pickled list of keys, then for each key its
/// element count (int64) and its raw elements.
Status Reader::readLegacyData(const Buffer &buffer, LegacyStorages &storages, qint64 at)
{
    const char *data = buffer.data;
    const qint64 size = buffer.size;
    UnpickleOptions plain = unpickleOptions(QStringLiteral("the legacy header"));
    plain.loadFromBytes = nullptr;
    Result<Unpickled> keys = detail::unpickle(data, size, at, plain);
    if (!keys)
        return keys.error();
    if (!keys.value().value.isList())
        return Error{QStringLiteral("the legacy storage list is missing")};

    at = keys.value().end;
    QSet<QString> filled;
    for (const Value &keyValue : keys.value().value.items()) {
        if (cancelled())
            return Error{QStringLiteral("cancelled"), ErrorCode::Cancelled};
        const QString key = keyValue.isInt() ? QString::number(keyValue.toInt()) : textOf(keyValue);
        const auto it = storages.roots.constFind(key);
        if (it == storages.roots.constEnd() || filled.contains(key)) {
            return Error{QStringLiteral("the storage list names “%1”, which the pickle does not "
                                        "use")
                             .arg(key)};
        }
        if (size - at < 8)
            return Error{truncatedMessage()};
        const qint64 count = qFromLittleEndian<qint64>(data + at);
        at += 8;
        if (count != it->numel) {
            return Error{QStringLiteral("storage “%1” holds %2 elements in the data, %3 in the "
                                        "pickle")
                             .arg(key)
                             .arg(count)
                             .arg(it->numel)};
        }
        const qint64 bytes = count * elementSize(it->storage->dtype); // checked when named
        if (size - at < bytes)
            return Error{truncatedMessage()};
        if (bytes > 0) {
            it->storage->bytes = QByteArray::fromRawData(data + at, qsizetype(bytes));
            it->storage->keepAlive = buffer.keepAlive;
        }
        at += bytes;
        filled.insert(key);
    }
    for (const QString &key : std::as_const(storages.order)) {
        if (!filled.contains(key))
            return Error{QStringLiteral("storage “%1” has no data in the file").arg(key)};
    }
    return success();
}

Result<Value> Reader::readLegacy(const Buffer &buffer, qint64 start, bool nested,
                                 StorageRef *single)
{
    Result<qint64> header = readLegacyHeader(buffer, start, nested);
    if (!header)
        return header.error();
    LegacyStorages storages;
    UnpickleOptions options = unpickleOptions(QStringLiteral("the pickle"));
    if (nested)
        options.loadFromBytes = nullptr;
    options.persistentLoad = [&](const Value &pid) {
        return loadLegacyStorage(storages, pid, buffer.size);
    };
    Result<Unpickled> main = detail::unpickle(buffer.data, buffer.size, header.value(), options);
    if (!main)
        return main.error();
    if (Status status = readLegacyData(buffer, storages, main.value().end); !status)
        return status.error();
    if (nested) {
        if (storages.roots.size() != 1 || !single)
            return Error{QStringLiteral("the bytes of a pickled storage hold %1 storages")
                             .arg(storages.roots.size())};
        const LegacyStorages::Root &root = storages.roots.begin().value();
        *single = StorageRef{root.storage, 0, root.numel};
        return Value();
    }
    addUnpickled(main.value());
    m_file.pickleProtocol = main.value().protocol;
    return main.value().value;
}

Result<StorageRef> Reader::loadFromBytes(const QByteArray &bytes)
{
    if (m_nested >= kMaxNestedLoads)
        return Error{QStringLiteral("pickled storages nested in pickled storages")};
    ++m_nested;
    auto holder = std::make_shared<QByteArray>(bytes);
    Buffer buffer{holder->constData(), holder->size(), holder};
    StorageRef storage;
    Result<Value> read = readLegacy(buffer, 0, true, &storage);
    --m_nested;
    if (!read)
        return Error{QStringLiteral("a pickled storage (torch.storage._load_from_bytes): %1")
                         .arg(read.errorMessage())};
    return storage;
}

Result<CheckpointFile> Reader::readPlainPickle(const Buffer &buffer)
{
    UnpickleOptions options = unpickleOptions(QStringLiteral("the pickle"));
    Result<Unpickled> unpickled = detail::unpickle(buffer.data, buffer.size, 0, options);
    if (!unpickled)
        return unpickled.error();
    const Value &root = unpickled.value().value;
    const qint64 trailing = buffer.size - unpickled.value().end;
    if (trailing > 0 && (root.isInt() || root.typeName() == u"builtins.int")) {
        return Error{QStringLiteral("a damaged legacy checkpoint: it starts with a number that is "
                                    "not torch's magic number")};
    }
    if (trailing > 0) {
        m_file.warnings.append(
            QStringLiteral("%1 bytes after the pickle were ignored").arg(trailing));
    }
    m_file.format = CheckpointFormat::Pickle;
    m_file.root = root;
    m_file.pickleProtocol = unpickled.value().protocol;
    addUnpickled(unpickled.value());
    m_file.notes.append(QStringLiteral("a plain pickle (pickle.dump), not a torch.save file"));
    finish();
    return std::move(m_file);
}

using detail::cannotReadCheckpoint;

Result<CheckpointFile> readBuffer(const Buffer &buffer, const ReadOptions &options,
                                  const QString &name)
{
    Reader reader(options, name);
    Result<CheckpointFile> file = reader.read(buffer);
    if (!file)
        return Error{cannotReadCheckpoint(name, file.errorMessage()), file.error().code};
    return file;
}

} // namespace

qint64 defaultMaxInflatedBytes()
{
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long pageSize = sysconf(_SC_PAGESIZE);
    qint64 limit = pages > 0 && pageSize > 0 ? qint64(pages) * pageSize / 4 : qint64(1) << 30;
    rlimit addressSpace{};
    if (getrlimit(RLIMIT_AS, &addressSpace) == 0 && addressSpace.rlim_cur != RLIM_INFINITY)
        limit = std::min(limit, qint64(addressSpace.rlim_cur / 2));
    return std::max<qint64>(limit, qint64(1) << 20);
}

Result<CheckpointFile> readCheckpoint(const QString &path, const ReadOptions &options)
{
    Result<std::shared_ptr<ByteSource>> opened = ByteSource::openFile(path);
    if (!opened)
        return Error{cannotReadCheckpoint(path, opened.errorMessage()), opened.error().code};
    Reader reader(options, path);
    Result<CheckpointFile> file = reader.readFile(opened.value());
    if (!file)
        return Error{cannotReadCheckpoint(path, file.errorMessage()), file.error().code};
    return file;
}

Result<CheckpointFile> readCheckpoint(const QByteArray &data, const ReadOptions &options,
                                      const QString &name)
{
    auto bytes = std::make_shared<QByteArray>(data);
    return readBuffer(Buffer{bytes->constData(), bytes->size(), bytes}, options, name);
}

QList<StoragePtr> storagesOf(const Value &root)
{
    QList<StoragePtr> storages;
    std::unordered_set<const Storage *> seen;
    WalkOptions options;
    options.keys = true; // a dict keyed by tensors holds storages too
    walkValues(
        root,
        [&](WalkPath, const Value &value) {
            if (value.isTensor()) {
                const StoragePtr storage = value.toTensor().storage;
                if (storage && seen.insert(storage.get()).second)
                    storages.append(storage);
            }
            return WalkAction::Continue;
        },
        options);
    return storages;
}

QStringList applyMapLocation(const Value &root, const MapLocation &map)
{
    std::map<std::pair<QString, QString>, int> moved;
    for (const StoragePtr &storage : storagesOf(root)) {
        QString why;
        const QString target = map.target(storage->device, &why);
        if (!why.isEmpty())
            ++moved[{storage->device, target}];
        storage->device = target;
    }
    QStringList notes;
    for (const auto &[move, count] : moved) {
        notes.append(QStringLiteral("%1 on %2 moved to %3: there is no %2 here")
                         .arg(count == 1 ? QStringLiteral("1 storage")
                                         : QStringLiteral("%1 storages").arg(count),
                              move.first, move.second));
    }
    return notes;
}

// --- State dicts ---------------------------------------------------------------------------------

namespace {

/// A dict of str → tensor: what model.state_dict() returns. `_extra_state` entries may hold
/// anything.
bool isStateDict(const Value &value)
{
    if (!value.isDict())
        return false;
    bool tensor = false;
    for (const Value::Entry &entry : value.entries()) {
        if (!entry.first.isString())
            return false;
        if (entry.second.isTensor())
            tensor = true;
        else if (!entry.first.toString().endsWith(u"_extra_state"))
            return false;
    }
    // An empty OrderedDict with state_dict()'s _metadata is an empty model's state dict.
    return tensor || (value.isOrderedDict() && value.state().contains(u"_metadata"))
        || (value.isOrderedDict() && value.size() == 0);
}

bool isModuleObject(const Value &value)
{
    return value.isObject() && value.state().contains(u"_parameters")
        && value.state().contains(u"_modules");
}

void flattenModule(const Value &module, const QString &prefix, Value::Entries *out, int depth)
{
    if (depth > 200)
        return;
    const Value state = module.state();
    const Value nonPersistent = state.value(u"_non_persistent_buffers_set");
    QStringList skip;
    const Value names = nonPersistent.objectArgs().at(0);
    for (const Value &name : names.items())
        skip.append(name.toString());
    const Value parameters = state.value(u"_parameters");
    const Value buffers = state.value(u"_buffers");
    const Value modules = state.value(u"_modules");
    for (const Value::Entry &entry : parameters.entries()) {
        if (entry.second.isTensor())
            out->append(
                {Value(prefix + entry.first.toString()), Value(detached(entry.second.toTensor()))});
    }
    for (const Value::Entry &entry : buffers.entries()) {
        if (entry.second.isTensor() && !skip.contains(entry.first.toString())) {
            out->append(
                {Value(prefix + entry.first.toString()), Value(detached(entry.second.toTensor()))});
        }
    }
    for (const Value::Entry &entry : modules.entries()) {
        if (isModuleObject(entry.second))
            flattenModule(entry.second, prefix + entry.first.toString() + u'.', out, depth + 1);
    }
}

void addPrefixNote(StateDict *found)
{
    const Value::Entries &entries = found->tensors.entries();
    if (entries.isEmpty())
        return;
    const bool prefixed = std::all_of(entries.begin(), entries.end(), [](const Value::Entry &e) {
        return e.first.toString().startsWith(u"module.");
    });
    if (prefixed) {
        found->notes.append(QStringLiteral("every key starts with “module.”: saved from "
                                           "DataParallel or DistributedDataParallel; "
                                           "stripKeyPrefix(stateDict, \"module.\") removes it"));
    }
}

} // namespace

namespace {

std::optional<StateDict> stateDictAt(const Value &value, const QString &where)
{
    if (isStateDict(value)) {
        StateDict found;
        found.tensors = value.isOrderedDict() ? value : Value::orderedDict(value.entries());
        found.source = where;
        return found;
    }
    if (isModuleObject(value)) {
        StateDict found;
        Value::Entries entries;
        flattenModule(value, QString(), &entries, 0);
        found.tensors = Value::orderedDict(std::move(entries));
        found.source = where == u"root" ? QStringLiteral("a pickled torch.nn.Module")
                                        : where + u" (a pickled torch.nn.Module)";
        found.notes.append(QStringLiteral("the weights come from a whole pickled torch.nn.Module "
                                          "(%1); saving model.state_dict() is the better habit")
                               .arg(value.typeName()));
        return found;
    }
    return std::nullopt;
}

/// Depth-first through dicts, the usual keys first at each level (Lightning's "state_dict",
/// "model_state_dict", ...), then the others in order: nested stage checkpoints hold their
/// weights a level or two down.
std::optional<StateDict> searchStateDict(const Value &value, const QString &where, int depth)
{
    if (std::optional<StateDict> found = stateDictAt(value, where))
        return found;
    if (depth >= 3 || !value.isDict())
        return std::nullopt;
    static const char16_t *const kKeys[] = {
        u"state_dict",  u"model_state_dict", u"model",  u"module",         u"net", u"network",
        u"model_state", u"weights",          u"params", u"ema_state_dict", u"ema",
    };
    QStringList candidates;
    for (const char16_t *key : kKeys)
        candidates.append(QString::fromUtf16(key));
    for (const Value::Entry &entry : value.entries()) {
        if (entry.first.isString() && !candidates.contains(entry.first.toString()))
            candidates.append(entry.first.toString());
    }
    for (const QString &key : std::as_const(candidates)) {
        const Value *child = value.find(key);
        if (!child || !(child->isDict() || child->isObject()))
            continue;
        const QString path = where + QStringLiteral("[\"%1\"]").arg(key);
        if (std::optional<StateDict> found = searchStateDict(*child, path, depth + 1))
            return found;
    }
    return std::nullopt;
}

} // namespace

Result<StateDict> extractStateDict(const Value &root)
{
    std::optional<StateDict> found = searchStateDict(root, QStringLiteral("root"), 0);
    if (found) {
        if (found->source.startsWith(u"root["))
            found->notes.prepend(QStringLiteral("weights taken from %1").arg(found->source));
        addPrefixNote(&*found);
        return *found;
    }
    if (root.isDict()) {
        QStringList keys;
        for (const Value::Entry &entry : root.entries())
            keys.append(entry.first.isString() ? entry.first.toString() : entry.first.typeName());
        return Error{QStringLiteral("no model weights found: the checkpoint is a dict with keys "
                                    "%1, none of which holds a state dict")
                         .arg(keys.mid(0, 20).join(u", "))};
    }
    return Error{
        QStringLiteral("no model weights found: the checkpoint holds a %1").arg(root.typeName())};
}

Value stripKeyPrefix(const Value &stateDict, const QString &prefix)
{
    Value::Entries entries;
    entries.reserve(stateDict.size());
    for (const Value::Entry &entry : stateDict.entries()) {
        const QString key = entry.first.toString();
        if (entry.first.isString() && key.startsWith(prefix))
            entries.append({Value(key.mid(prefix.size())), entry.second});
        else
            entries.append(entry);
    }
    return stateDict.isOrderedDict() ? Value::orderedDict(std::move(entries), stateDict.state())
                                     : Value::dict(std::move(entries));
}

Result<QStringList> convertCheckpoint(const QString &source, const QString &target,
                                      const ConvertOptions &options)
{
    Result<CheckpointFile> file = readCheckpoint(source, options.read);
    if (!file)
        return file.error();
    QStringList notes = file->notes;
    const bool toSafetensors = isSafetensorsPath(target);
    const bool sourceIsStateDict = file->format == CheckpointFormat::TorchScript
        || file->format == CheckpointFormat::Safetensors;
    Value value = file->root;
    if (toSafetensors || sourceIsStateDict) {
        Result<StateDict> found = extractStateDict(file->root);
        if (!found) {
            return Error{
                QStringLiteral("Cannot convert “%1”: %2").arg(source, found.errorMessage())};
        }
        notes += found->notes;
        value = found->tensors;
    }
    if (toSafetensors) {
        QMap<QString, QString> metadata = options.metadata;
        if (!metadata.contains(QStringLiteral("format")))
            metadata.insert(QStringLiteral("format"), QStringLiteral("pt"));
        if (Status status = writeSafetensors(target, value, metadata, &notes); !status)
            return status.error();
        return notes;
    }
    if (!file->metadata.isEmpty()) {
        notes.append(QStringLiteral("the safetensors metadata (%1) has no place in a torch.save "
                                    "file and was dropped")
                         .arg(QStringList(file->metadata.keys()).join(u", ")));
    }
    if (Status status = writeCheckpoint(target, value); !status)
        return status.error();
    return notes;
}

} // namespace ifs::ckpt
