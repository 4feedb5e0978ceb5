#include "checkpoint/safetensors.h"

#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonParseError>
#include <QSaveFile>
#include <QSet>
#include <QtEndian>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

namespace ifs::ckpt {

namespace {

// The reference implementation's limit on the header.
constexpr qint64 kMaxHeaderSize = 100'000'000;
constexpr char kMetadataKey[] = "__metadata__";

struct DTypeName
{
    DType dtype;
    const char16_t *name;
};

constexpr DTypeName kNames[] = {
    {DType::Float64, u"F64"},   {DType::Float32, u"F32"},   {DType::Float16, u"F16"},
    {DType::BFloat16, u"BF16"}, {DType::Int64, u"I64"},     {DType::Int32, u"I32"},
    {DType::Int16, u"I16"},     {DType::Int8, u"I8"},       {DType::UInt8, u"U8"},
    {DType::Bool, u"BOOL"},     {DType::Complex64, u"C64"},
};

std::optional<DType> dtypeFromSafetensors(const QString &name)
{
    for (const DTypeName &entry : kNames) {
        if (name == QStringView(entry.name))
            return entry.dtype;
    }
    return std::nullopt;
}

/// A JSON integer that fits qint64 exactly (JSON numbers arrive as doubles).
bool jsonInteger(const QJsonValue &value, qint64 *out)
{
    if (!value.isDouble())
        return false;
    const double number = value.toDouble();
    if (!(number >= 0 && number <= 9007199254740992.0) || std::trunc(number) != number)
        return false;
    *out = qint64(number);
    return true;
}

QByteArray jsonString(const QString &text)
{
    // QJsonDocument escapes correctly; a one-element array is the shortest way to borrow that.
    QByteArray array = QJsonDocument(QJsonArray{text}).toJson(QJsonDocument::Compact);
    return array.mid(1, array.size() - 2);
}

struct Entry
{
    QString name;
    DType dtype;
    QList<qint64> shape;
    qint64 begin = 0;
    qint64 end = 0;
};

} // namespace

QString safetensorsDTypeName(DType dtype)
{
    for (const DTypeName &entry : kNames) {
        if (entry.dtype == dtype)
            return QString::fromUtf16(entry.name);
    }
    return QString();
}

namespace detail {

bool looksLikeSafetensors(const char *data, qint64 size)
{
    if (size < 10)
        return false;
    const quint64 length = qFromLittleEndian<quint64>(data);
    return length >= 2 && length <= quint64(kMaxHeaderSize) && data[8] == '{';
}

qint64 safetensorsHeaderBytes(const char *first8, qint64 fileSize)
{
    const quint64 headerSize = qFromLittleEndian<quint64>(first8);
    if (headerSize > quint64(kMaxHeaderSize))
        return std::min<qint64>(fileSize, 8);
    return std::min<qint64>(fileSize, 8 + qint64(headerSize));
}

Result<CheckpointFile> readSafetensorsBuffer(const char *data, qint64 available, qint64 fileSize,
                                             const SafetensorsData &attach,
                                             const ReadOptions &options)
{
    if (fileSize < 8 || available < 8)
        return Error{QStringLiteral("the file ends early: it was probably not fully written or "
                                    "downloaded")};
    const quint64 headerSize = qFromLittleEndian<quint64>(data);
    if (headerSize > quint64(kMaxHeaderSize))
        return Error{QStringLiteral("the safetensors header claims %1 bytes, more than the "
                                    "100 MB allowed")
                         .arg(headerSize)};
    if (qint64(headerSize) > fileSize - 8 || qint64(headerSize) > available - 8)
        return Error{QStringLiteral("the file ends early: it was probably not fully written or "
                                    "downloaded (inside the safetensors header)")};
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(
        QByteArray::fromRawData(data + 8, qsizetype(headerSize)), &parseError);
    if (parseError.error != QJsonParseError::NoError || !document.isObject()) {
        return Error{QStringLiteral("the safetensors header is not a JSON object (%1)")
                         .arg(parseError.errorString())};
    }
    const qint64 dataStart = 8 + qint64(headerSize);
    const qint64 dataSize = fileSize - dataStart;
    const QJsonObject header = document.object();

    CheckpointFile file;
    file.format = CheckpointFormat::Safetensors;
    QList<Entry> entries;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const QString name = it.key();
        if (name == QLatin1String(kMetadataKey)) {
            if (!it.value().isObject())
                return Error{QStringLiteral("the safetensors __metadata__ is not an object")};
            const QJsonObject metadata = it.value().toObject();
            for (auto m = metadata.begin(); m != metadata.end(); ++m) {
                if (!m.value().isString()) {
                    return Error{QStringLiteral("the safetensors __metadata__ entry “%1” is not a "
                                                "string")
                                     .arg(m.key())};
                }
                file.metadata.insert(m.key(), m.value().toString());
            }
            continue;
        }
        const QJsonObject info = it.value().toObject();
        const QString dtypeText = info.value(u"dtype").toString();
        const std::optional<DType> dtype = dtypeFromSafetensors(dtypeText);
        if (!it.value().isObject() || dtypeText.isEmpty())
            return Error{QStringLiteral("tensor “%1” has no dtype in the header").arg(name)};
        if (!dtype) {
            return Error{QStringLiteral("tensor “%1” has dtype %2, which is not supported")
                             .arg(name, dtypeText)};
        }
        Entry entry{name, *dtype, {}, 0, 0};
        const QJsonArray shape = info.value(u"shape").toArray();
        if (!info.value(u"shape").isArray())
            return Error{QStringLiteral("tensor “%1” has no shape").arg(name)};
        qint64 count = 1;
        for (const QJsonValue &dim : shape) {
            qint64 extent = 0;
            if (!jsonInteger(dim, &extent) || __builtin_mul_overflow(count, extent, &count))
                return Error{QStringLiteral("tensor “%1” has an invalid shape").arg(name)};
            entry.shape.append(extent);
        }
        const QJsonArray offsets = info.value(u"data_offsets").toArray();
        if (offsets.size() != 2 || !jsonInteger(offsets[0], &entry.begin)
            || !jsonInteger(offsets[1], &entry.end) || entry.end < entry.begin) {
            return Error{QStringLiteral("tensor “%1” has invalid data_offsets").arg(name)};
        }
        qint64 bytes = 0;
        if (__builtin_mul_overflow(count, qint64(elementSize(*dtype)), &bytes)
            || bytes != entry.end - entry.begin) {
            return Error{QStringLiteral("tensor “%1” of shape and dtype %2 needs %3 bytes, its "
                                        "data_offsets give %4")
                             .arg(name, dtypeText)
                             .arg(bytes)
                             .arg(entry.end - entry.begin)};
        }
        entries.append(std::move(entry));
    }
    std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) {
        return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
    });
    qint64 expected = 0;
    for (const Entry &entry : std::as_const(entries)) {
        if (entry.begin != expected) {
            return Error{QStringLiteral("tensor “%1” starts at byte %2 of the data, expected %3 "
                                        "(overlapping or missing data)")
                             .arg(entry.name)
                             .arg(entry.begin)
                             .arg(expected)};
        }
        expected = entry.end;
    }
    if (expected > dataSize) {
        return Error{QStringLiteral("the file ends early: it was probably not fully written or "
                                    "downloaded (the tensors need %1 bytes of data, the file holds "
                                    "%2)")
                         .arg(expected)
                         .arg(dataSize)};
    }
    if (expected < dataSize) {
        return Error{QStringLiteral("%1 bytes of data follow the last tensor (a damaged file)")
                         .arg(dataSize - expected)};
    }

    Value::Entries tensors;
    tensors.reserve(entries.size());
    std::map<QString, int> moved;
    for (const Entry &entry : std::as_const(entries)) {
        auto storage = std::make_shared<Storage>();
        storage->dtype = entry.dtype;
        if (entry.end > entry.begin)
            attach(*storage, entry.name, dataStart + entry.begin, entry.end - entry.begin);
        QString why;
        storage->device = options.map.target(QStringLiteral("cpu"), &why);
        file.storages.append(
            {entry.name, entry.dtype, storage->numel(), QStringLiteral("cpu"), storage->device});
        Tensor tensor;
        tensor.storage = storage;
        tensor.shape = entry.shape;
        tensor.stride = Tensor::contiguousStrides(entry.shape);
        tensors.append({Value(entry.name), Value(tensor)});
    }
    file.root = Value::orderedDict(std::move(tensors));
    return file;
}

} // namespace detail

Result<CheckpointFile> readSafetensors(const QString &path, const ReadOptions &options)
{
    Result<CheckpointFile> file = readCheckpoint(path, options);
    if (file && file->format != CheckpointFormat::Safetensors) {
        return Error{QStringLiteral("Cannot read safetensors file “%1”: it is a %2 checkpoint")
                         .arg(path, formatName(file->format))};
    }
    return file;
}

Status writeSafetensors(const QString &path, const Value &stateDict,
                        const QMap<QString, QString> &metadata, QStringList *notes)
{
    const auto failure = [&](const QString &reason) {
        return Error{QStringLiteral("Cannot write safetensors file “%1”: %2").arg(path, reason)};
    };
    if (!stateDict.isDict())
        return failure(
            QStringLiteral("it needs a dict of tensors, not a %1").arg(stateDict.typeName()));

    QByteArray header = "{";
    if (!metadata.isEmpty()) {
        header += jsonString(QString::fromLatin1(kMetadataKey)) + ":{";
        bool first = true;
        for (auto it = metadata.begin(); it != metadata.end(); ++it) {
            if (!first)
                header += ',';
            first = false;
            header += jsonString(it.key()) + ':' + jsonString(it.value());
        }
        header += '}';
    }
    QSet<QString> names;
    std::unordered_map<const Storage *, qsizetype> groupOf;
    QList<QStringList> groups; // tensor names per storage, in order of first appearance
    QList<Tensor> tensors;
    qint64 offset = 0;
    for (const Value::Entry &entry : stateDict.entries()) {
        if (!entry.first.isString())
            return failure(QStringLiteral("a key is a %1, not a str").arg(entry.first.typeName()));
        const QString name = entry.first.toString();
        if (name == QLatin1String(kMetadataKey) || names.contains(name))
            return failure(QStringLiteral("the key “%1” is reserved or repeated").arg(name));
        names.insert(name);
        if (!entry.second.isTensor()) {
            return failure(QStringLiteral("“%1” is a %2; safetensors holds only tensors")
                               .arg(name, entry.second.typeName()));
        }
        const Tensor tensor = entry.second.toTensor();
        if (Status layout = tensor.checkLayout(); !layout)
            return failure(QStringLiteral("tensor “%1”: %2").arg(name, layout.errorMessage()));
        const QString dtype = safetensorsDTypeName(tensor.dtype());
        if (dtype.isEmpty()) {
            return failure(QStringLiteral("tensor “%1” is %2, which safetensors cannot hold")
                               .arg(name, dtypeName(tensor.dtype())));
        }
        if (tensor.numel() > 0) {
            const auto [it, added] = groupOf.emplace(tensor.storage.get(), groups.size());
            if (added)
                groups.append(QStringList());
            groups[it->second].append(name);
        }
        const qint64 bytes = tensor.byteSize();
        QByteArray shape;
        for (qsizetype i = 0; i < tensor.shape.size(); ++i)
            shape += (i ? "," : "") + QByteArray::number(tensor.shape[i]);
        if (header.size() > 1)
            header += ',';
        header += jsonString(name) + ":{\"dtype\":\"" + dtype.toLatin1() + "\",\"shape\":[" + shape
            + "],\"data_offsets\":[" + QByteArray::number(offset) + ','
            + QByteArray::number(offset + bytes) + "]}";
        offset += bytes;
        tensors.append(tensor);
    }
    header += '}';
    // The data starts 8-byte aligned, as the reference writer pads it.
    while ((header.size() % 8) != 0)
        header += ' ';

    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return failure(file.errorString());
    char length[8];
    qToLittleEndian<quint64>(quint64(header.size()), length);
    bool ok = file.write(length, 8) == 8 && file.write(header) == header.size();
    for (const Tensor &tensor : std::as_const(tensors)) {
        if (!ok)
            break;
        if (tensor.numel() == 0)
            continue;
        if (tensor.isContiguous()) {
            // Straight from the storage: a file read on demand streams its data through.
            const Status visited
                = tensor.storage->visitBytes(tensor.offset * elementSize(tensor.dtype()),
                                             tensor.byteSize(), [&](const char *data, qint64 size) {
                                                 ok = file.write(data, size) == size;
                                                 return ok;
                                             });
            if (!visited) {
                file.cancelWriting();
                return failure(visited.errorMessage());
            }
        } else {
            const Result<QByteArray> bytes = tensor.contiguousBytes();
            if (!bytes) {
                file.cancelWriting();
                return failure(bytes.errorMessage());
            }
            ok = file.write(bytes.value()) == bytes->size();
        }
    }
    if (!ok || !file.commit())
        return failure(file.errorString());

    if (notes) {
        for (const QStringList &group : std::as_const(groups)) {
            if (group.size() > 1) {
                notes->append(QStringLiteral("%1 share memory in the source; safetensors has no "
                                             "sharing, so each was written in full and they load "
                                             "as independent tensors")
                                  .arg(group.join(u", ")));
            }
        }
    }
    return success();
}

} // namespace ifs::ckpt
