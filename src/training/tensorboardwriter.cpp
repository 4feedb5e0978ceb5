// TensorBoard event files: TFRecord framing and the few protobuf messages SummaryWriter writes,
// encoded and decoded by hand (see tensorboardwriter.h).

#include "training/tensorboardwriter.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QMap>
#include <QRegularExpression>
#include <QSysInfo>

#include <array>
#include <atomic>
#include <cstring>
#include <memory>

namespace ifs {

namespace {

// ---- CRC-32C ------------------------------------------------------------------------------------

constexpr std::array<uint32_t, 256> makeCrcTable()
{
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1; // Castagnoli, reflected
        table[i] = c;
    }
    return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = makeCrcTable();

// ---- Protobuf wire format
// ------------------------------------------------------------------------

enum WireType : uint32_t { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 };

void putVarint(QByteArray &out, uint64_t v)
{
    while (v >= 0x80) {
        out += char((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += char(v);
}

void putKey(QByteArray &out, uint32_t field, WireType type)
{
    putVarint(out, (uint64_t(field) << 3) | type);
}

void putBytes(QByteArray &out, uint32_t field, const QByteArray &bytes)
{
    putKey(out, field, Bytes);
    putVarint(out, uint64_t(bytes.size()));
    out += bytes;
}

template<typename T>
void putFixed(QByteArray &out, uint32_t field, T value)
{
    static_assert(sizeof(T) == 4 || sizeof(T) == 8);
    putKey(out, field, sizeof(T) == 4 ? Fixed32 : Fixed64);
    char raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T)); // little-endian hosts only, as the rest of the app
    out.append(raw, qsizetype(sizeof(T)));
}

/// Event {wall_time = 1, step = 2, summary = 5} around one Summary.Value.
QByteArray eventWithValue(const QByteArray &value, qint64 step, double wallTime)
{
    QByteArray summary;
    putBytes(summary, 1, value); // Summary.value
    QByteArray event;
    putFixed(event, 1, wallTime);
    if (step != 0) { // proto3 leaves out a default value, as Python's encoder does
        putKey(event, 2, Varint);
        putVarint(event, uint64_t(step));
    }
    putBytes(event, 5, summary);
    return event;
}

double now()
{
    return double(QDateTime::currentMSecsSinceEpoch()) / 1000.0;
}

/// One field of a message: its number, wire type and value (an integer, or the bytes of a
/// length-delimited field).
struct Field
{
    uint32_t number = 0;
    uint32_t type = 0;
    uint64_t integer = 0;
    QByteArrayView bytes;

    double asDouble() const
    {
        double d;
        std::memcpy(&d, &integer, sizeof d);
        return d;
    }
    float asFloat() const
    {
        const auto bits = uint32_t(integer);
        float f;
        std::memcpy(&f, &bits, sizeof f);
        return f;
    }
};

/// Reads the fields of one message in order; next() is false at its end or on damage (ok()).
class ProtoReader
{
public:
    explicit ProtoReader(QByteArrayView data)
        : m_data(data)
    { }
    bool next(Field &field)
    {
        if (m_at >= m_data.size())
            return false;
        uint64_t key = 0;
        if (!varint(key))
            return fail();
        field.number = uint32_t(key >> 3);
        field.type = uint32_t(key & 7);
        field.bytes = {};
        switch (field.type) {
        case Varint:
            return varint(field.integer) || fail();
        case Fixed64:
        case Fixed32: {
            const qsizetype size = field.type == Fixed64 ? 8 : 4;
            if (m_data.size() - m_at < size)
                return fail();
            field.integer = 0;
            std::memcpy(&field.integer, m_data.data() + m_at, size_t(size));
            m_at += size;
            return true;
        }
        case Bytes: {
            uint64_t size = 0;
            if (!varint(size) || size > uint64_t(m_data.size() - m_at))
                return fail();
            field.bytes = m_data.sliced(m_at, qsizetype(size));
            m_at += qsizetype(size);
            return true;
        }
        default:
            return fail(); // groups: nothing TensorBoard writes
        }
    }
    bool ok() const { return m_ok; }

private:
    bool varint(uint64_t &v)
    {
        v = 0;
        for (int shift = 0; shift < 64 && m_at < m_data.size(); shift += 7) {
            const auto byte = uint8_t(m_data[m_at++]);
            v |= uint64_t(byte & 0x7f) << shift;
            if (!(byte & 0x80))
                return true;
        }
        return false;
    }
    bool fail()
    {
        m_ok = false;
        m_at = m_data.size();
        return false;
    }

    QByteArrayView m_data;
    qsizetype m_at = 0;
    bool m_ok = true;
};

constexpr uint64_t kDtFloat = 1, kDtDouble = 2, kDtString = 7;

/// A TensorProto's single number or string; false for anything else (histograms, images).
bool readTensor(QByteArrayView bytes, TensorBoardValue &out)
{
    uint64_t dtype = 0;
    QByteArrayView content, text;
    std::vector<double> numbers;
    ProtoReader reader(bytes);
    Field f;
    while (reader.next(f)) {
        if (f.number == 1 && f.type == Varint)
            dtype = f.integer;
        else if (f.number == 4 && f.type == Bytes)
            content = f.bytes;
        else if (f.number == 8 && f.type == Bytes)
            text = f.bytes;
        else if (f.number == 5 && f.type == Fixed32)
            numbers.push_back(f.asFloat());
        else if (f.number == 6 && f.type == Fixed64)
            numbers.push_back(f.asDouble());
        else if ((f.number == 5 || f.number == 6) && f.type == Bytes) { // packed
            const size_t width = f.number == 5 ? 4 : 8;
            for (size_t at = 0; at + width <= size_t(f.bytes.size()); at += width) {
                Field one;
                std::memcpy(&one.integer, f.bytes.data() + at, width);
                numbers.push_back(width == 4 ? double(one.asFloat()) : one.asDouble());
            }
        }
    }
    if (dtype == kDtString) {
        out.isText = true;
        out.text = QString::fromUtf8(text);
        return true;
    }
    if (numbers.empty() && (dtype == kDtFloat || dtype == kDtDouble)) {
        Field one;
        const size_t width = dtype == kDtFloat ? 4 : 8;
        if (size_t(content.size()) != width)
            return false;
        std::memcpy(&one.integer, content.data(), width);
        numbers.push_back(width == 4 ? double(one.asFloat()) : one.asDouble());
    }
    if (numbers.size() != 1)
        return false;
    out.value = numbers.front();
    return true;
}

/// The values of one Summary (Summary.value = 1: tag 1, simple_value 2, tensor 8).
void readSummary(QByteArrayView bytes, double wallTime, qint64 step, QList<TensorBoardValue> &out)
{
    ProtoReader summary(bytes);
    Field v;
    while (summary.next(v)) {
        if (v.number != 1 || v.type != Bytes)
            continue;
        TensorBoardValue value;
        value.wallTime = wallTime;
        value.step = step;
        bool has = false;
        ProtoReader fields(v.bytes);
        Field f;
        while (fields.next(f)) {
            if (f.number == 1 && f.type == Bytes)
                value.tag = QString::fromUtf8(f.bytes);
            else if (f.number == 2 && f.type == Fixed32) {
                value.value = f.asFloat();
                has = true;
            } else if (f.number == 8 && f.type == Bytes)
                has = readTensor(f.bytes, value) || has;
        }
        if (has)
            out.append(value);
    }
}

uint64_t readU64(const char *p)
{
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

uint32_t readU32(const char *p)
{
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

std::atomic<int> g_fileCounter{0};

} // namespace

uint32_t crc32c(const char *data, size_t size)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < size; ++i)
        crc = kCrcTable[(crc ^ uint8_t(data[i])) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

uint32_t maskedCrc32c(const char *data, size_t size)
{
    const uint32_t crc = crc32c(data, size);
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

QByteArray tfRecord(const QByteArray &data)
{
    QByteArray record;
    record.reserve(data.size() + 16);
    const uint64_t length = uint64_t(data.size());
    char header[8];
    std::memcpy(header, &length, sizeof header);
    record.append(header, 8);
    const uint32_t lengthCrc = maskedCrc32c(header, 8);
    record.append(reinterpret_cast<const char *>(&lengthCrc), 4);
    record += data;
    const uint32_t dataCrc = maskedCrc32c(data.constData(), size_t(data.size()));
    record.append(reinterpret_cast<const char *>(&dataCrc), 4);
    return record;
}

QByteArray scalarEvent(const QString &tag, double value, qint64 step, double wallTime)
{
    QByteArray v;
    putBytes(v, 1, tag.toUtf8());
    putFixed(v, 2, float(value));
    return eventWithValue(v, step, wallTime);
}

QByteArray textEvent(const QString &tag, const QString &text, qint64 step, double wallTime)
{
    QByteArray dim; // TensorShapeProto.Dim {size = 1}
    putKey(dim, 1, Varint);
    putVarint(dim, 1);
    QByteArray shape;
    putBytes(shape, 2, dim);
    QByteArray tensor; // TensorProto {dtype = 1, tensor_shape = 2, string_val = 8}
    putKey(tensor, 1, Varint);
    putVarint(tensor, kDtString);
    putBytes(tensor, 2, shape);
    putBytes(tensor, 8, text.toUtf8());
    QByteArray pluginData; // PluginData {plugin_name = 1}; TextPluginData(version=0) is empty
    putBytes(pluginData, 1, QByteArrayLiteral("text"));
    QByteArray metadata;
    putBytes(metadata, 1, pluginData);
    QByteArray v;
    putBytes(v, 1, (tag + QStringLiteral("/text_summary")).toUtf8());
    putBytes(v, 8, tensor);
    putBytes(v, 9, metadata);
    return eventWithValue(v, step, wallTime);
}

Status TensorBoardWriter::open(const QString &folder, const QString &suffix)
{
    close();
    const double start = now();
    QString host = QSysInfo::machineHostName();
    if (host.isEmpty())
        host = QStringLiteral("localhost");
    const QString name = QStringLiteral("events.out.tfevents.%1.%2.%3.%4%5")
                             .arg(qint64(start), 10, 10, QChar(u'0'))
                             .arg(host)
                             .arg(QCoreApplication::applicationPid())
                             .arg(g_fileCounter.fetch_add(1))
                             .arg(suffix);
    const QString path = QDir(folder).filePath(name);
    QByteArray first;
    putFixed(first, 1, start);
    putBytes(first, 3, QByteArrayLiteral("brain.Event:2"));
    if (Status ok = writeFileAtomically(path, tfRecord(first)); !ok)
        return ok;
    return m_file.open(path);
}

Status TensorBoardWriter::addScalar(const QString &tag, double value, qint64 step, double wallTime)
{
    return m_file.append(tfRecord(scalarEvent(tag, value, step, wallTime < 0 ? now() : wallTime)));
}

Status TensorBoardWriter::addText(const QString &tag, const QString &text, qint64 step,
                                  double wallTime)
{
    return m_file.append(tfRecord(textEvent(tag, text, step, wallTime < 0 ? now() : wallTime)));
}

Result<QList<TensorBoardValue>> readTensorBoardFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("cannot read “%1”: %2").arg(path, file.errorString()),
                     ErrorCode::Io};
    const QByteArray data = file.readAll();
    QList<TensorBoardValue> values;
    qsizetype at = 0;
    while (data.size() - at >= 12) {
        const char *p = data.constData() + at;
        const uint64_t length = readU64(p);
        if (readU32(p + 8) != maskedCrc32c(p, 8))
            return Error{QStringLiteral("“%1” is not a TensorBoard event file, or it is damaged: "
                                        "the record at byte %2 has a wrong length checksum")
                             .arg(path)
                             .arg(at),
                         ErrorCode::Format};
        if (length > uint64_t(data.size() - at - 16))
            break; // the last record, still being written
        const char *body = p + 12;
        if (readU32(body + length) != maskedCrc32c(body, size_t(length)))
            return Error{QStringLiteral("“%1” is damaged: the record at byte %2 has a wrong "
                                        "data checksum")
                             .arg(path)
                             .arg(at),
                         ErrorCode::Format};
        double wallTime = 0.0;
        qint64 step = 0;
        QByteArrayView summary;
        ProtoReader event(QByteArrayView(body, qsizetype(length)));
        Field f;
        while (event.next(f)) {
            if (f.number == 1 && f.type == Fixed64)
                wallTime = f.asDouble();
            else if (f.number == 2 && f.type == Varint)
                step = qint64(f.integer);
            else if (f.number == 5 && f.type == Bytes)
                summary = f.bytes;
        }
        if (!summary.isEmpty())
            readSummary(summary, wallTime, step, values);
        at += qsizetype(length) + 16;
    }
    return values;
}

QStringList tensorBoardFiles(const QString &folder)
{
    QStringList files;
    const QDir dir(folder);
    for (const QString &name :
         dir.entryList({QStringLiteral("events.out.tfevents.*")}, QDir::Files, QDir::Name))
        files.append(dir.filePath(name));
    return files;
}

namespace {

/// What a tag means for a RunHistory, by its words.
struct TagMeaning
{
    enum Quantity { None, Loss, Accuracy, Lr, Speed } quantity = None;
    bool validation = false;
    bool perStep = false;
};

TagMeaning meaningOf(const QString &tag)
{
    static const QRegularExpression nonWord(QStringLiteral("[^a-z0-9]+"));
    const QStringList words = tag.toLower().split(nonWord, Qt::SkipEmptyParts);
    const QString joined = words.join(u'_');
    auto has = [&words](std::initializer_list<const char *> options) {
        for (const char *o : options)
            if (words.contains(QLatin1String(o)))
                return true;
        return false;
    };
    TagMeaning m;
    if (joined.contains(QLatin1String("images_per_s")) || has({"throughput", "ips"}))
        m.quantity = TagMeaning::Speed;
    else if (has({"lr", "learning"}) || joined.contains(QLatin1String("learning_rate")))
        m.quantity = TagMeaning::Lr;
    else if (joined.contains(QLatin1String("loss")))
        m.quantity = TagMeaning::Loss;
    else if (joined.contains(QLatin1String("acc")))
        m.quantity = TagMeaning::Accuracy;
    m.validation = has({"val", "valid", "validation", "test", "eval"});
    m.perStep = m.quantity == TagMeaning::Lr
        || (m.quantity == TagMeaning::Loss && has({"step", "batch", "iter", "iteration"}));
    return m;
}

} // namespace

Result<RunHistory> readTensorBoardHistory(const QString &folder)
{
    const QStringList files = tensorBoardFiles(folder);
    if (files.isEmpty())
        return Error{QStringLiteral("“%1” is not a training run folder: it has no metrics.csv "
                                    "and no TensorBoard event file")
                         .arg(folder)};
    QMap<qint64, StepRecord> steps;
    QMap<qint64, EpochRecord> epochs;
    QMap<qint64, double> trainAcc, valAcc;
    for (const QString &path : files) {
        const auto values = readTensorBoardFile(path);
        if (!values)
            return values.error();
        for (const TensorBoardValue &v : values.value()) {
            if (v.isText)
                continue;
            const TagMeaning m = meaningOf(v.tag);
            if (m.quantity == TagMeaning::None || (m.perStep && m.validation))
                continue;
            if (m.perStep) {
                StepRecord &s = steps[v.step];
                s.step = v.step;
                (m.quantity == TagMeaning::Loss ? s.loss : s.lr) = v.value;
                continue;
            }
            if (m.quantity == TagMeaning::Speed) {
                // Ours are at the epoch's last step: the epoch is the one ending there or later.
                auto it = std::find_if(epochs.begin(), epochs.end(), [&v](const EpochRecord &e) {
                    return e.step == 0 && e.imagesPerSecond == 0.0;
                });
                if (it != epochs.end()) {
                    it->step = v.step;
                    it->imagesPerSecond = v.value;
                }
                continue;
            }
            EpochRecord &e = epochs[v.step];
            e.epoch = int(v.step);
            if (m.quantity == TagMeaning::Loss)
                (m.validation ? e.valLoss : e.trainLoss) = v.value;
            else if (m.quantity == TagMeaning::Accuracy)
                (m.validation ? valAcc : trainAcc)[v.step] = v.value;
        }
    }
    if (steps.isEmpty() && epochs.isEmpty())
        return Error{QStringLiteral("“%1” has no metrics.csv, and its TensorBoard event files hold "
                                    "no loss, accuracy or learning rate")
                         .arg(folder)};
    // Percent or fractions, by the values themselves (ours are percent, as metrics.csv).
    auto scale = [](const QMap<qint64, double> &acc) {
        for (double a : acc)
            if (a > 1.0)
                return 0.01;
        return 1.0;
    };
    const double trainScale = scale(trainAcc), valScale = scale(valAcc);
    RunHistory history;
    history.folder = folder;
    history.name = QFileInfo(folder).fileName();
    for (auto it = epochs.begin(); it != epochs.end(); ++it) {
        it->trainAccuracy = trainAcc.value(it.key()) * trainScale;
        it->valAccuracy = valAcc.value(it.key()) * valScale;
        history.epochs.append(*it);
    }
    int epoch = 1;
    for (const StepRecord &s : steps) {
        StepRecord r = s;
        while (epoch < int(history.epochs.size()) && history.epochs[epoch - 1].step > 0
               && r.step > history.epochs[epoch - 1].step)
            ++epoch;
        r.epoch = epoch;
        history.steps.append(r);
    }
    return history;
}

namespace {

/// The event file of one run, shared by the wrapped callbacks. After a failed write it writes
/// nothing more; `failure` says why.
struct RunEvents
{
    QString folder;
    TensorBoardWriter writer;
    QString failure;

    /// False after a failure; the first one is reported through `status`.
    bool check(Status ok, const TrainCallbacks &callbacks)
    {
        if (ok || !failure.isEmpty())
            return bool(ok);
        writer.close();
        failure = ok.error().message;
        if (callbacks.status)
            callbacks.status(QStringLiteral("TensorBoard events not written: %1").arg(failure));
        return false;
    }
    bool writing() const { return writer.isOpen() && failure.isEmpty(); }

    /// The event file and the run's config.json as text (indented four spaces: TensorBoard
    /// renders text as Markdown, and an indented block keeps the JSON as it is).
    void start(TrainStart &start, const TrainCallbacks &callbacks)
    {
        folder = start.history.folder; // the run folder, created by now
        // In a data-parallel run rank 0 alone writes the run folder (its figures are all ranks').
        if (folder.isEmpty() || start.rank != 0)
            return;
        if (!check(writer.open(folder), callbacks)) {
            start.notes.append(QStringLiteral("TensorBoard events not written: %1").arg(failure));
            return;
        }
        QFile config(QDir(folder).filePath(QStringLiteral("config.json")));
        if (!config.open(QIODevice::ReadOnly))
            return;
        QString text;
        for (const QString &line : QString::fromUtf8(config.readAll()).split(u'\n'))
            text += QStringLiteral("    ") + line + u'\n';
        check(writer.addText(QStringLiteral("config"), text, start.startStep), callbacks);
    }
    void step(const StepProgress &p, const TrainCallbacks &callbacks)
    {
        if (writing()
            && check(writer.addScalar(QStringLiteral("train/loss_step"), p.loss, p.step),
                     callbacks))
            check(writer.addScalar(QStringLiteral("train/lr"), p.lr, p.step), callbacks);
    }
    void epoch(const EpochReport &report, const TrainCallbacks &callbacks)
    {
        const EpochRecord &r = report.record;
        QList<std::pair<QString, double>> values{
            {QStringLiteral("train/loss"), r.trainLoss},
            {QStringLiteral("train/accuracy"), r.trainAccuracy * 100.0},
        };
        if (report.evaluation) {
            values.append({QStringLiteral("val/loss"), r.valLoss});
            values.append({QStringLiteral("val/accuracy"), r.valAccuracy * 100.0});
        }
        for (const auto &[tag, value] : values) {
            if (!writing() || !check(writer.addScalar(tag, value, r.epoch), callbacks))
                return;
        }
        if (writing())
            check(writer.addScalar(QStringLiteral("train/images_per_s"), r.imagesPerSecond, r.step),
                  callbacks);
    }
};

} // namespace

TrainCallbacks withTensorBoardEvents(const TrainCallbacks &callbacks)
{
    auto events = std::make_shared<RunEvents>();
    TrainCallbacks wrapped = callbacks;
    wrapped.started = [events, callbacks](const TrainStart &start) {
        TrainStart copy = start;
        events->start(copy, callbacks);
        if (callbacks.started)
            callbacks.started(copy);
    };
    wrapped.step = [events, callbacks](const StepProgress &progress) {
        events->step(progress, callbacks);
        if (callbacks.step)
            callbacks.step(progress);
    };
    wrapped.epoch = [events, callbacks](const EpochReport &report) {
        events->epoch(report, callbacks);
        if (callbacks.epoch)
            callbacks.epoch(report);
    };
    wrapped.finished = [events, callbacks](const TrainFinish &finish) {
        events->writer.close();
        if (!callbacks.finished)
            return;
        if (events->failure.isEmpty())
            return callbacks.finished(finish);
        TrainFinish copy = finish;
        copy.message
            += QStringLiteral(" (TensorBoard events not written: %1)").arg(events->failure);
        callbacks.finished(copy);
    };
    return wrapped;
}

} // namespace ifs
