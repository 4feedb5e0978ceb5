// Checkpoint reader. The oracle is Python's torch.load (torch 1.13, torchvision 0.14 on our
// machines): tests/tools/checkpointreader_oracle.py writes real files with torch.save,
// torch.jit.save, pickle and by hand (safetensors, hostile files) and describes what torch.load
// returns; the reader's Values, described the same way here, must match bit for bit. Files the
// C++ side writes go back to Python for the round trips.
#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointsummary.h"
#include "checkpoint/checkpointvalue.h"
#include "checkpoint/checkpointwalk.h"
#include "checkpoint/checkpointwriter.h"
#include "checkpoint/safetensors.h"

#include "testutil.h"

#include <QCryptographicHash>
#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRandomGenerator>
#include <QTemporaryDir>
#include <QTest>
#include <QtEndian>

#include <sys/stat.h>

#include <limits>
#include <map>

using namespace ifs;
using namespace ifs::ckpt;
using namespace Qt::StringLiterals;

Q_DECLARE_METATYPE(ifs::ckpt::Value)

// A byte string literal with its embedded NULs.
#define PICKLE(literal) QByteArray(literal, sizeof(literal) - 1)

namespace {

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

QJsonArray intArray(const QList<qint64> &values)
{
    QJsonArray array;
    for (const qint64 v : values)
        array.append(v);
    return array;
}

/// The oracle's describe() for a Value.
class Describer
{
public:
    QJsonObject operator()(const Value &value)
    {
        switch (value.kind()) {
        case Value::Kind::None:
            return {{u"type"_s, u"None"_s}};
        case Value::Kind::Bool:
            return {{u"type"_s, u"bool"_s}, {u"value"_s, value.toBool()}};
        case Value::Kind::Int:
            return {{u"type"_s, u"int"_s}, {u"value"_s, QString::number(value.toInt())}};
        case Value::Kind::Float: {
            char bytes[8];
            qToBigEndian<double>(value.toDouble(), bytes);
            return {{u"type"_s, u"float"_s},
                    {u"hex"_s, QString::fromLatin1(QByteArray(bytes, 8).toHex())}};
        }
        case Value::Kind::String:
            return {{u"type"_s, u"str"_s}, {u"value"_s, value.toString()}};
        case Value::Kind::Bytes:
            return {{u"type"_s, u"bytes"_s},
                    {u"hex"_s, QString::fromLatin1(value.toBytes().toHex())}};
        case Value::Kind::Tuple:
        case Value::Kind::List: {
            QJsonArray items;
            for (const Value &item : value.items())
                items.append((*this)(item));
            return {{u"type"_s, value.isTuple() ? u"tuple"_s : u"list"_s}, {u"items"_s, items}};
        }
        case Value::Kind::Dict:
        case Value::Kind::OrderedDict: {
            QJsonArray keys;
            QJsonArray values;
            for (const Value::Entry &entry : value.entries())
                keys.append((*this)(entry.first));
            for (const Value::Entry &entry : value.entries())
                values.append((*this)(entry.second));
            QJsonObject out{{u"type"_s, value.isOrderedDict() ? u"OrderedDict"_s : u"dict"_s},
                            {u"keys"_s, keys},
                            {u"values"_s, values}};
            if (value.state().size() > 0)
                out.insert(u"attributes"_s, (*this)(value.state()));
            return out;
        }
        case Value::Kind::Tensor:
            return tensor(value.toTensor());
        case Value::Kind::Size:
            return {{u"type"_s, u"Size"_s}, {u"value"_s, intArray(value.toSize())}};
        case Value::Kind::Device:
            return {{u"type"_s, u"device"_s}, {u"value"_s, value.toString()}};
        case Value::Kind::DType:
            return {{u"type"_s, u"dtype"_s},
                    {u"value"_s, QString(u"torch." + dtypeName(value.toDType()))}};
        case Value::Kind::Object: {
            const QString cls = value.typeName();
            QJsonObject out{{u"type"_s, u"object"_s}, {u"class"_s, cls}};
            if (cls == u"builtins.complex") {
                out.insert(u"args"_s,
                           QJsonArray{(*this)(value.objectArgs().at(0)),
                                      (*this)(value.objectArgs().at(1))});
            } else if (cls == u"builtins.set" || cls == u"builtins.frozenset") {
                out.insert(u"size"_s, value.objectArgs().at(0).size());
            }
            if (value.state().isDict() && value.state().size() > 0)
                out.insert(u"state"_s, (*this)(value.state()));
            return out;
        }
        }
        return {};
    }

private:
    QJsonObject tensor(const Tensor &t)
    {
        const QByteArray data = t.contiguousBytes().value();
        QJsonValue storageId = QJsonValue::Null;
        if (t.storage->numel() > 0) {
            const auto [it, inserted] = m_ids.emplace(t.storage.get(), int(m_ids.size()));
            storageId = it->second;
        }
        return {
            {u"type"_s, t.parameter ? u"Parameter"_s : u"Tensor"_s},
            {u"dtype"_s, dtypeName(t.dtype())},
            {u"shape"_s, intArray(t.shape)},
            {u"stride"_s, intArray(t.stride)},
            {u"offset"_s, t.offset},
            {u"requires_grad"_s, t.requiresGrad},
            {u"device"_s, t.device()},
            {u"storage"_s, storageId},
            {u"storage_numel"_s, t.storage->numel()},
            {u"sha1"_s,
             QString::fromLatin1(QCryptographicHash::hash(data, QCryptographicHash::Sha1).toHex())},
        };
    }

    std::map<const Storage *, int> m_ids;
};

QJsonObject describe(const Value &value)
{
    return Describer()(value);
}

QString jsonText(const QJsonValue &v)
{
    if (v.isObject())
        return QString::fromUtf8(QJsonDocument(v.toObject()).toJson(QJsonDocument::Compact));
    if (v.isArray())
        return QString::fromUtf8(QJsonDocument(v.toArray()).toJson(QJsonDocument::Compact));
    return QString::fromUtf8(QJsonDocument(QJsonArray{v}).toJson(QJsonDocument::Compact));
}

/// Where two JSON values first differ, for a readable failure; empty when equal.
QString firstDifference(const QJsonValue &a, const QJsonValue &b, const QString &path = u"$"_s)
{
    if (a.type() != b.type() || (!a.isObject() && !a.isArray() && a != b))
        return path + u": " + jsonText(a).left(300) + u" vs " + jsonText(b).left(300);
    if (a.isObject()) {
        const QJsonObject x = a.toObject();
        const QJsonObject y = b.toObject();
        if (x.keys() != y.keys())
            return path + u": keys " + x.keys().join(u',') + u" vs " + y.keys().join(u',');
        for (const QString &key : x.keys()) {
            const QString diff = firstDifference(x[key], y[key], path + u'.' + key);
            if (!diff.isEmpty())
                return diff;
        }
    } else if (a.isArray()) {
        const QJsonArray x = a.toArray();
        const QJsonArray y = b.toArray();
        if (x.size() != y.size())
            return path + QStringLiteral(": %1 items vs %2").arg(x.size()).arg(y.size());
        for (qsizetype i = 0; i < x.size(); ++i) {
            const QString diff = firstDifference(x[i], y[i], path + QStringLiteral("[%1]").arg(i));
            if (!diff.isEmpty())
                return diff;
        }
    }
    return QString();
}

/// A state dict's description without its `_metadata` attribute: state_dict() takes the module
/// versions from class attributes, which a pickled module or a TorchScript archive does not hold.
QJsonObject withoutMetadata(const QJsonValue &description)
{
    QJsonObject out = description.toObject();
    out.remove(u"attributes"_s);
    return out;
}

bool containsText(const QStringList &list, const QString &needle)
{
    return std::any_of(list.begin(), list.end(),
                       [&](const QString &line) { return line.contains(needle); });
}

/// A plain pickle (protocol 2 header) read from memory.
Result<CheckpointFile> readPickle(const QByteArray &body)
{
    return readCheckpoint(QByteArray("\x80\x02", 2) + body);
}

QJsonObject runOracleJson(const QStringList &args, QString *error)
{
    const test::ProcessResult run = test::runOracle(u"checkpointreader_oracle.py"_s, args, 600000);
    if (run.exitCode != 0 || run.crashed) {
        *error = QString::fromUtf8(run.err.right(3000));
        return {};
    }
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(run.out, &parseError);
    if (!document.isObject())
        *error = u"oracle output is not JSON: "_s + parseError.errorString();
    return document.object();
}

} // namespace

class TestCheckpointReader : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void readsPythonFiles_data();
    void readsPythonFiles();
    void roundTripsThroughPython();
    void mapLocation();
    void extractsStateDicts();
    void safetensorsWritesWhatPythonReads();
    void convertsBothWays();
    void storagesOutliveTheFile();
    void readsOtherZipLayouts();
    void readsLegacyStorageViews();
    void pickleOpcodes_data();
    void pickleOpcodes();
    void pickleWarnings();
    void hostileFiles_data();
    void hostileFiles();
    void truncatedFiles();
    void flippedBytes();
    void cancel();
    void walkValuesVisitsInOrder();
    void cyclicAndDeepPickles();
    void refusesWhatIsNotAFile();
    void onDemandReadsTheStructureOnly();
    void fileChangedUnderAReader();
    void zipBombBudget();

private:
    QString path(const QString &file) const { return m_dir.filePath(file); }
    QJsonObject caseNamed(const QString &name) const;

    QTemporaryDir m_dir;
    QJsonObject m_manifest;
};

void TestCheckpointReader::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QString error;
    runOracleJson({u"make"_s, m_dir.path()}, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    const QJsonDocument manifest = QJsonDocument::fromJson(readAll(path(u"manifest.json"_s)));
    QVERIFY(manifest.isObject());
    m_manifest = manifest.object();
    QVERIFY(m_manifest[u"cases"].toArray().size() > 30);
}

QJsonObject TestCheckpointReader::caseNamed(const QString &name) const
{
    for (const QJsonValue &entry : m_manifest[u"cases"].toArray()) {
        if (entry[u"name"].toString() == name)
            return entry.toObject();
    }
    return {};
}

void TestCheckpointReader::readsPythonFiles_data()
{
    QTest::addColumn<QJsonObject>("expected");
    for (const QJsonValue &entry : m_manifest[u"cases"].toArray())
        QTest::newRow(qPrintable(entry[u"name"].toString())) << entry.toObject();
}

void TestCheckpointReader::readsPythonFiles()
{
    QFETCH(QJsonObject, expected);
    const QString file = path(expected[u"file"].toString());
    Result<CheckpointFile> read = readCheckpoint(file);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(formatName(read->format), expected[u"format"].toString());

    if (expected[u"expect"].isObject()) {
        QJsonObject expect = expected[u"expect"].toObject();
        if (read->format == CheckpointFormat::TorchScript)
            expect.remove(u"attributes"_s); // see withoutMetadata()
        const QString diff = firstDifference(describe(read->root), expect);
        QVERIFY2(diff.isEmpty(), qPrintable(diff));
    }
    if (expected[u"state_dict"].isObject()) {
        Result<StateDict> found = extractStateDict(read->root);
        QVERIFY2(found.ok(), qPrintable(found.errorMessage()));
        const QString diff = firstDifference(withoutMetadata(describe(found->tensors)),
                                             withoutMetadata(expected[u"state_dict"]));
        QVERIFY2(diff.isEmpty(), qPrintable(diff));
    }
    if (expected.contains(u"locations")) {
        QStringList saved;
        for (const StorageInfo &storage : read->storages) {
            saved.append(storage.savedLocation);
            QCOMPARE(storage.location, u"cpu"_s); // the default: nothing but the CPU here
        }
        QStringList locations;
        for (const QJsonValue &location : expected[u"locations"].toArray())
            locations.append(location.toString());
        QCOMPARE(saved, locations);
    }
    const QString warnings = read->warnings.join(u"\n");
    for (const QJsonValue &needle : expected[u"warnings"].toArray())
        QVERIFY2(warnings.contains(needle.toString()), qPrintable(warnings));
    if (expected[u"clean"].toBool())
        QVERIFY2(read->warnings.isEmpty(), qPrintable(warnings));
    const QString notes = read->notes.join(u"\n");
    for (const QJsonValue &needle : expected[u"notes"].toArray())
        QVERIFY2(notes.contains(needle.toString()), qPrintable(notes));
    if (expected.contains(u"metadata")) {
        QMap<QString, QString> metadata;
        const QJsonObject object = expected[u"metadata"].toObject();
        for (auto it = object.begin(); it != object.end(); ++it)
            metadata.insert(it.key(), it.value().toString());
        QCOMPARE(read->metadata, metadata);
    }

    // Reading tensor data on demand gives the same values.
    ReadOptions lazy;
    lazy.tensorData = ReadOptions::TensorData::OnDemand;
    Result<CheckpointFile> copied = readCheckpoint(file, lazy);
    QVERIFY2(copied.ok(), qPrintable(copied.errorMessage()));
    QCOMPARE(describe(copied->root), describe(read->root)); // NaN != NaN for operator==
    QCOMPARE(copied->warnings, read->warnings);

    // Nothing was executed.
    QVERIFY(!QFile::exists(path(u"MARKER"_s)));
}

void TestCheckpointReader::roundTripsThroughPython()
{
    // C++ read → writeCheckpoint → Python torch.load must give what Python saved, and the C++
    // reader must read its own file back to equal Values.
    QStringList written;
    QStringList names;
    QList<QJsonObject> expects;
    for (const QJsonValue &entry : m_manifest[u"cases"].toArray()) {
        const QJsonObject expected = entry.toObject();
        if (!expected[u"writable"].toBool() || !expected[u"expect"].isObject())
            continue;
        Result<CheckpointFile> read = readCheckpoint(path(expected[u"file"].toString()));
        QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
        const QString target = path(u"roundtrip_"_s + expected[u"name"].toString() + u".pt"_s);
        Status status = writeCheckpoint(target, read->root);
        QVERIFY2(status.ok(),
                 qPrintable(expected[u"name"].toString() + u": "_s + status.errorMessage()));
        Result<CheckpointFile> again = readCheckpoint(target);
        QVERIFY2(again.ok(), qPrintable(again.errorMessage()));
        QJsonObject expect = expected[u"expect"].toObject();
        if (read->format == CheckpointFormat::TorchScript)
            expect = withoutMetadata(expect);
        const QString diff = firstDifference(describe(again->root), expect);
        QVERIFY2(diff.isEmpty(), qPrintable(expected[u"name"].toString() + u": "_s + diff));
        written.append(target);
        expects.append(expect);
        names.append(expected[u"name"].toString());
    }
    QVERIFY(written.size() >= 25);
    QString error;
    const QJsonObject python = runOracleJson(QStringList{u"describe"_s} + written, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    for (qsizetype i = 0; i < written.size(); ++i) {
        const QJsonObject loaded = python[written[i]].toObject();
        const QString diff = firstDifference(loaded[u"load"], expects[i]);
        QVERIFY2(diff.isEmpty(), qPrintable(names[i] + u": "_s + diff));
    }
}

void TestCheckpointReader::mapLocation()
{
    const QString file = path(u"gpu_zip.pt"_s);
    const auto devices = [](const CheckpointFile &read) {
        QStringList out;
        for (const Value::Entry &entry : read.root.entries())
            out.append(entry.second.toTensor().device());
        return out;
    };

    // CPU-only (the default): every storage on the CPU, with a note per missing device.
    Result<CheckpointFile> read = readCheckpoint(file);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->savedLocations(), (QStringList{u"cuda:0"_s, u"cuda:1"_s, u"cpu"_s}));
    QCOMPARE(devices(read.value()), (QStringList{u"cpu"_s, u"cpu"_s, u"cpu"_s}));
    QVERIFY2(containsText(read->notes, u"saved on cuda:0"_s), qPrintable(read->notes.join(u'\n')));
    QVERIFY(containsText(read->notes, u"saved on cuda:1"_s));

    ReadOptions options;
    options.map = MapLocation::keep();
    read = readCheckpoint(file, options);
    QVERIFY(read.ok());
    QCOMPARE(devices(read.value()), (QStringList{u"cuda:0"_s, u"cuda:1"_s, u"cpu"_s}));
    QVERIFY(read->notes.isEmpty());

    options.map = MapLocation::to(u"cuda:0"_s);
    read = readCheckpoint(file, options);
    QVERIFY(read.ok());
    QCOMPARE(devices(read.value()), (QStringList{u"cuda:0"_s, u"cuda:0"_s, u"cuda:0"_s}));

    options.map = MapLocation::map({{u"cuda:1"_s, u"cuda:0"_s}}, {u"cuda:0"_s});
    read = readCheckpoint(file, options);
    QVERIFY(read.ok());
    QCOMPARE(devices(read.value()), (QStringList{u"cuda:0"_s, u"cuda:0"_s, u"cpu"_s}));
    QVERIFY(read->notes.isEmpty());

    options.map = MapLocation::automatic({u"cuda:0"_s});
    read = readCheckpoint(file, options);
    QVERIFY(read.ok());
    QCOMPARE(devices(read.value()), (QStringList{u"cuda:0"_s, u"cpu"_s, u"cpu"_s}));
    QCOMPARE(read->storages[1].location, u"cpu"_s);
    QVERIFY(containsText(read->notes, u"no cuda:1 here"_s));
    QVERIFY(!containsText(read->notes, u"cuda:0 here"_s));

    // The legacy format reports the same.
    Result<CheckpointFile> legacy
        = readCheckpoint(path(u"gpu_legacy.pth"_s), ReadOptions{MapLocation::keep()});
    QVERIFY(legacy.ok());
    QCOMPARE(devices(legacy.value()), (QStringList{u"cuda:0"_s, u"cuda:1"_s, u"cpu"_s}));

    // Relabelling a Value afterwards.
    const QStringList notes = applyMapLocation(legacy->root, MapLocation::automatic());
    QCOMPARE(devices(legacy.value()), (QStringList{u"cpu"_s, u"cpu"_s, u"cpu"_s}));
    QCOMPARE(notes.size(), 2);
    applyMapLocation(legacy->root, MapLocation::to(u"cuda:3"_s));
    QCOMPARE(devices(legacy.value()), (QStringList{u"cuda:3"_s, u"cuda:3"_s, u"cuda:3"_s}));
    QCOMPARE(storagesOf(legacy->root).size(), 3);
}

void TestCheckpointReader::extractsStateDicts()
{
    Result<CheckpointFile> lightning = readCheckpoint(path(u"lightning.pt"_s));
    QVERIFY(lightning.ok());
    Result<StateDict> found = extractStateDict(lightning->root);
    QVERIFY2(found.ok(), qPrintable(found.errorMessage()));
    QCOMPARE(found->source, uR"(root["state_dict"])"_s);
    // The hyper-parameters' Namespace stays an inert object with its attributes.
    const Value args = lightning->root.value(u"hyper_parameters").value(u"args");
    QVERIFY(args.isObject());
    QCOMPARE(args.typeName(), u"argparse.Namespace"_s);
    QCOMPARE(args.state().value(u"name").toString(), u"run"_s);

    Result<CheckpointFile> stages = readCheckpoint(path(u"stages.pt"_s));
    QVERIFY(stages.ok());
    found = extractStateDict(stages->root);
    QVERIFY(found.ok());
    QCOMPARE(found->source, uR"(root["stage1"]["model"])"_s);

    Result<CheckpointFile> parallel = readCheckpoint(path(u"resnet18_dataparallel.pt"_s));
    QVERIFY(parallel.ok());
    found = extractStateDict(parallel->root);
    QVERIFY(found.ok());
    QVERIFY(containsText(found->notes, u"module."_s));
    const Value stripped = stripKeyPrefix(found->tensors, u"module."_s);
    Result<CheckpointFile> plain = readCheckpoint(path(u"resnet18_zip.pt"_s));
    QVERIFY(plain.ok());
    // The same tensors under the same names (the _metadata attributes differ by the prefix).
    QVERIFY(Value::orderedDict(stripped.entries()) == Value::orderedDict(plain->root.entries()));

    Result<CheckpointFile> whole = readCheckpoint(path(u"resnet18_whole.pt"_s));
    QVERIFY(whole.ok());
    QVERIFY(whole->warnings.isEmpty());
    found = extractStateDict(whole->root);
    QVERIFY(found.ok());
    QVERIFY(containsText(found->notes, u"state_dict()"_s));
    QCOMPARE(found->tensors.size(), plain->root.size());

    Result<CheckpointFile> optimizer = readCheckpoint(path(u"optimizer_adam.pt"_s));
    QVERIFY(optimizer.ok());
    found = extractStateDict(optimizer->root);
    QVERIFY(!found.ok());
    QVERIFY2(found.errorMessage().contains(u"state, param_groups"_s),
             qPrintable(found.errorMessage()));
}

void TestCheckpointReader::safetensorsWritesWhatPythonReads()
{
    Result<CheckpointFile> resnet = readCheckpoint(path(u"resnet18_zip.pt"_s));
    QVERIFY(resnet.ok());
    Result<CheckpointFile> zoo = readCheckpoint(path(u"tensors_zip.pt"_s));
    QVERIFY(zoo.ok());
    Value::Entries zooEntries;
    for (const Value::Entry &entry : zoo->root.entries()) {
        if (entry.second.toTensor().dtype() != DType::Complex128)
            zooEntries.append(entry);
    }
    const Value zooDict = Value::orderedDict(zooEntries);

    struct Case
    {
        QString file;
        Value stateDict;
        QMap<QString, QString> metadata;
    };
    const QList<Case> cases{
        {path(u"cpp_resnet18.safetensors"_s), resnet->root, {{u"format"_s, u"pt"_s}}},
        {path(u"cpp_zoo.safetensors"_s), zooDict, {{u"ünïcode"_s, u"\"quoted\"\n"_s}}},
    };
    QStringList files;
    for (const Case &c : cases) {
        QStringList notes;
        Status status = writeSafetensors(c.file, c.stateDict, c.metadata, &notes);
        QVERIFY2(status.ok(), qPrintable(status.errorMessage()));
        if (c.stateDict == zooDict) {
            // Views of one storage and tied weights are written in full, with a note.
            QVERIFY2(containsText(notes, u"embedding.weight, head.weight"_s),
                     qPrintable(notes.join(u'\n')));
            QVERIFY(containsText(notes, u"base, view_offset, view_2d, transposed"_s));
        }
        files.append(c.file);
    }
    QString error;
    const QJsonObject python = runOracleJson(QStringList{u"safetensors"_s} + files, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    for (const Case &c : cases) {
        const QJsonObject report = python[c.file].toObject();
        QVERIFY2(report[u"ok"].toBool(), qPrintable(report[u"error"].toString()));
        QVERIFY(report[u"aligned"].toBool());
        // What Python reads: each tensor contiguous on its own storage.
        Value::Entries contiguous;
        for (const Value::Entry &entry : c.stateDict.entries()) {
            const Tensor t = entry.second.toTensor();
            contiguous.append(
                {entry.first,
                 Value(Tensor::fromBytes(t.dtype(), t.contiguousBytes().value(), t.shape))});
        }
        const QString diff
            = firstDifference(report[u"tensors"], describe(Value::orderedDict(contiguous)));
        QVERIFY2(diff.isEmpty(), qPrintable(diff));
        QJsonObject metadata;
        for (auto it = c.metadata.begin(); it != c.metadata.end(); ++it)
            metadata.insert(it.key(), it.value());
        QCOMPARE(report[u"metadata"].toObject(), metadata);

        // And the C++ reader reads its own file back.
        Result<CheckpointFile> again = readSafetensors(c.file);
        QVERIFY2(again.ok(), qPrintable(again.errorMessage()));
        QVERIFY(again->root == Value::orderedDict(contiguous));
        QCOMPARE(again->metadata, c.metadata);
    }

    // Refusals name the key.
    const QString refused = path(u"refused.safetensors"_s);
    Status status = writeSafetensors(refused, zoo->root);
    QVERIFY(!status.ok());
    QVERIFY2(status.errorMessage().contains(
                 u"tensor “complex128” is complex128, which safetensors cannot hold"_s),
             qPrintable(status.errorMessage()));
    status = writeSafetensors(refused, Value::dict({{"a", 1}}));
    QVERIFY(!status.ok());
    QVERIFY2(status.errorMessage().contains(u"“a” is a int"_s), qPrintable(status.errorMessage()));
    QVERIFY(!QFile::exists(refused));
    QVERIFY(!readSafetensors(path(u"resnet18_zip.pt"_s)).ok());
}

void TestCheckpointReader::convertsBothWays()
{
    // .pth → .safetensors → .pt, and Python loads the result equal to the original state dict.
    const QString safetensors = path(u"converted.safetensors"_s);
    const QString back = path(u"converted_back.pt"_s);
    Result<QStringList> notes = convertCheckpoint(path(u"resnet18_legacy.pth"_s), safetensors);
    QVERIFY2(notes.ok(), qPrintable(notes.errorMessage()));
    notes = convertCheckpoint(safetensors, back);
    QVERIFY2(notes.ok(), qPrintable(notes.errorMessage()));
    Result<CheckpointFile> converted = readSafetensors(safetensors);
    QVERIFY(converted.ok());
    QCOMPARE(converted->metadata.value(u"format"_s), u"pt"_s);

    // Lightning → safetensors takes root["state_dict"]; a whole module its weights.
    const QString lightning = path(u"lightning.safetensors"_s);
    notes = convertCheckpoint(path(u"lightning.pt"_s), lightning);
    QVERIFY2(notes.ok(), qPrintable(notes.errorMessage()));
    QVERIFY(containsText(notes.value(), uR"(root["state_dict"])"_s));
    const QString script = path(u"script.safetensors"_s);
    notes = convertCheckpoint(path(u"resnet18_script.pt"_s), script);
    QVERIFY2(notes.ok(), qPrintable(notes.errorMessage()));

    QString error;
    const QJsonObject python = runOracleJson({u"describe"_s, back}, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    // resnet18's state dict holds one storage per tensor: safetensors changes nothing there.
    const QJsonObject original = withoutMetadata(caseNamed(u"resnet18_legacy"_s).value(u"expect"));
    const QJsonObject loaded = python.value(back).toObject().value(u"load").toObject();
    QString diff = firstDifference(loaded, original);
    QVERIFY2(diff.isEmpty(), qPrintable(diff));

    const QJsonObject safe = runOracleJson({u"safetensors"_s, lightning, script}, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    diff = firstDifference(safe.value(lightning).toObject().value(u"tensors"),
                           withoutMetadata(caseNamed(u"lightning"_s).value(u"state_dict")));
    QVERIFY2(diff.isEmpty(), qPrintable(diff));
    diff = firstDifference(
        safe.value(script).toObject().value(u"tensors"),
        withoutMetadata(caseNamed(u"resnet18_torchscript"_s).value(u"state_dict")));
    QVERIFY2(diff.isEmpty(), qPrintable(diff));
}

void TestCheckpointReader::storagesOutliveTheFile()
{
    // Storages point into the mapped file and keep the mapping alive on their own.
    const QString copy = path(u"short_lived.pt"_s);
    QVERIFY(QFile::copy(path(u"tensors_zip.pt"_s), copy));
    Tensor tensor;
    QByteArray expected;
    {
        Result<CheckpointFile> read = readCheckpoint(copy);
        QVERIFY(read.ok());
        tensor = read->root.value(u"float32").toTensor();
        QVERIFY(tensor.storage->keepAlive != nullptr);
        expected = QByteArray(tensor.storage->bytes.constData(), tensor.storage->bytes.size());
    }
    QVERIFY(QFile::remove(copy));
    QCOMPARE(QByteArray(tensor.storage->bytes.constData(), tensor.storage->bytes.size()), expected);
}

void TestCheckpointReader::readsOtherZipLayouts()
{
    // ZIP64 records and offsets, and the folder name torch >= 2.0 writes ("archive"), as our own
    // writer makes them (its tests check that Python reads them).
    Result<CheckpointFile> zoo = readCheckpoint(path(u"tensors_zip.pt"_s));
    QVERIFY(zoo.ok());
    WriteOptions options;
    options.forceZip64 = true;
    const QString zip64 = path(u"zip64.pt"_s);
    Status status = writeCheckpoint(zip64, zoo->root, options);
    QVERIFY2(status.ok(), qPrintable(status.errorMessage()));
    Result<CheckpointFile> read = readCheckpoint(zip64);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->archiveName, u"archive"_s);
    QCOMPARE(describe(read->root), describe(zoo->root));
    QCOMPARE(zoo->archiveName, u"tensors_zip"_s);

    // A storage record with a wrong CRC: an error with checksums, garbage-free bytes without.
    QByteArray damaged = readAll(path(u"tensors_zip.pt"_s));
    const Tensor first = zoo->root.value(u"float32").toTensor();
    const qsizetype at = damaged.indexOf(QByteArray(first.storage->bytes.constData(), 8));
    QVERIFY(at > 0);
    damaged[at] = char(damaged[at] ^ 0x55);
    read = readCheckpoint(damaged);
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(u"CRC-32"_s), qPrintable(read.errorMessage()));
    ReadOptions unchecked;
    unchecked.verifyChecksums = false;
    read = readCheckpoint(damaged, unchecked);
    QVERIFY(read.ok());
    QVERIFY(read->root.value(u"float32").toTensor().storage->bytes != first.storage->bytes);
}

void TestCheckpointReader::readsLegacyStorageViews()
{
    // Files of PyTorch < 0.4 name storage views: ('storage', type, root key, location, numel,
    // (view key, offset, size)). torch 1.13 no longer writes them; this is one by hand.
    QByteArray file = PICKLE("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
    file += PICKLE("\x80\x02M\xe9\x03.");
    file += PICKLE("\x80\x02}(X\x0d\x00\x00\x00little_endian\x88u.");
    file += PICKLE("\x80\x02(ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
                   "ctorch\nFloatStorage\nX\x04\x00\x00\x00rootX\x03\x00\x00\x00"
                   "cpuK\x06(X"
                   "\x04\x00\x00\x00viewK\x02K\x03ttQK\x00K\x03\x85K\x01\x85\x89"
                   "ccollections\n"
                   "OrderedDict\n)RtRctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
                   "ctorch\nFloatStorage\nX\x04\x00\x00\x00rootX\x03\x00\x00\x00"
                   "cpuK\x06NtQK"
                   "\x01K\x02\x85K\x01\x85\x89"
                   "ccollections\nOrderedDict\n)Rt"
                   "Rl.");
    file += PICKLE("\x80\x02]X\x04\x00\x00\x00roota.");
    file += PICKLE("\x06\x00\x00\x00\x00\x00\x00\x00");
    const float values[] = {0, 1, 2, 3, 4, 5};
    file += QByteArray(reinterpret_cast<const char *>(values), sizeof values);

    Result<CheckpointFile> read = readCheckpoint(file);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->format, CheckpointFormat::Legacy);
    QCOMPARE(read->storages.size(), 1);
    const Tensor view = read->root.at(0).toTensor();
    const Tensor whole = read->root.at(1).toTensor();
    QCOMPARE(view.storage, whole.storage); // the view shares the root storage
    QCOMPARE(view.offset, 2);
    QCOMPARE(whole.offset, 1);
    const float expected[] = {2, 3, 4};
    QCOMPARE(view.contiguousBytes().value(),
             QByteArray(reinterpret_cast<const char *>(expected), sizeof expected));

    // A view that claims more than its view storage holds is refused, even inside the root.
    QByteArray outside = file;
    outside.replace(QByteArray("K\x03\x85K\x01\x85"), QByteArray("K\x04\x85K\x01\x85"));
    read = readCheckpoint(outside);
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(u"needs 4 elements but its storage holds 3"_s),
             qPrintable(read.errorMessage()));
}

void TestCheckpointReader::pickleOpcodes_data()
{
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<Value>("expected");

    QTest::newRow("protocol 0 text")
        << PICKLE("(lp0\nI1\naI01\naI00\naF1.5\naS'a\\x62\\n'\np1\n"
                  "aV\\u00e9t\np2\naL-12L\nag1\na.")
        << Value::list({1, true, false, 1.5, "ab\n", "\u00e9t", Value(-12), "ab\n"});
    QTest::newRow("protocol 1 binary") << PICKLE("]q\x00(K\x01M\x00\x01J\xff\xff\xff\xffG?\xf8"
                                                 "\x00\x00\x00\x00\x00\x00U\x02"
                                                 "abT\x01\x00\x00"
                                                 "\x00"
                                                 "ce.")
                                       << Value::list({1, 256, -1, 1.5, "ab", "c"});
    QTest::newRow("long1") << PICKLE("\x8a\x01\xff.") << Value(-1);
    QTest::newRow("long1 8 bytes") << PICKLE("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.")
                                   << Value(std::numeric_limits<qint64>::min());
    QTest::newRow("long1 empty") << PICKLE("\x8a\x00.") << Value(0);
    QTest::newRow("big int") << PICKLE("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.")
                             << Value::object(u"builtins"_s, u"int"_s,
                                              Value::tuple({"0x10000000000000000"}));
    QTest::newRow("negative big int")
        << PICKLE("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\xff.")
        << Value::object(u"builtins"_s, u"int"_s, Value::tuple({"-0x10000000000000000"}));
    QTest::newRow("protocol 4 strings") << PICKLE("\x95\x10\x00\x00\x00\x00\x00\x00\x00(\x8c\x01"
                                                  "a\x94\x8d\x01\x00\x00\x00\x00\x00\x00\x00"
                                                  "bh\x00t.")
                                        << Value::tuple({"a", "b", "a"});
    QTest::newRow("bytes") << PICKLE("(C\x02\x00\xff"
                                     "B\x01\x00\x00\x00x\x8e\x01\x00\x00\x00\x00\x00"
                                     "\x00\x00y\x96\x01\x00\x00\x00\x00\x00\x00\x00zt.")
                           << Value::tuple({Value::bytes(QByteArray("\x00\xff", 2)),
                                            Value::bytes("x"), Value::bytes("y"),
                                            Value::bytes("z")});
    QTest::newRow("codecs bytes") << PICKLE("c_codecs\nencode\nX\x04\x00\x00\x00\xc3\xbf\x00"
                                            "a"
                                            "X\x06\x00\x00\x00latin1\x86R.")
                                  << Value::bytes(QByteArray("\xff\x00\x61", 3));
    // A dict memoized empty and filled later, referenced twice: both references see the items.
    QTest::newRow("shared mutation") << PICKLE("](]q\x01h\x01"
                                               "eh\x01K\x05"
                                               "a0.")
                                     << Value::list({Value::list({5}), Value::list({5})});
    QTest::newRow("dict keys") << PICKLE("}(K\x01K\x02\x88K\x03X\x01\x00\x00\x00"
                                         "aK\x04u.")
                               << Value::dict({{1, 3}, {"a", 4}});
    QTest::newRow("one item") << PICKLE("}X\x01\x00\x00\x00"
                                        "a]K\x07"
                                        "as.")
                              << Value::dict({{"a", Value::list({7})}});
    QTest::newRow("set") << PICKLE("\x8f(K\x01K\x02\x90.")
                         << Value::object(u"builtins"_s, u"set"_s,
                                          Value::tuple({Value::list({1, 2})}));
    QTest::newRow("frozenset") << PICKLE("(K\x01\x91.")
                               << Value::object(u"builtins"_s, u"frozenset"_s,
                                                Value::tuple({Value::list({1})}));
    QTest::newRow("ordered dict") << PICKLE("ccollections\nOrderedDict\n)R(K\x02K\x03u.")
                                  << Value::orderedDict({{2, 3}});
    QTest::newRow("ordered dict pairs") << PICKLE("ccollections\nOrderedDict\n(](K\x01K\x02"
                                                  "latR.")
                                        << Value::orderedDict({{1, 2}});
    QTest::newRow("torch values") << PICKLE("(ctorch\nSize\n((K\x02K\x03ttRctorch\ndevice\n"
                                            "X\x04\x00\x00\x00"
                                            "cudaK\x01\x86Rctorch\nbfloat16\n"
                                            "ctorch\nlong\nt.")
                                  << Value::tuple({Value::size({2, 3}), Value::device(u"cuda:1"_s),
                                                   Value::dtype(DType::BFloat16),
                                                   Value::dtype(DType::Int64)});
    QTest::newRow("marks") << PICKLE("(K\x01(K\x02"
                                     "1K\x02"
                                     "2(0t.")
                           << Value::tuple({1, 2, 2});
    QTest::newRow("newobj_ex") << PICKLE("\x8c\x08\x61rgparse\x8c\x09Namespace\x93)}\x92}(\x8c"
                                         "\x01\x61K\x01ub.")
                               << Value::object(u"argparse"_s, u"Namespace"_s, Value::tuple(),
                                                Value::dict({{"a", 1}}));
    QTest::newRow("inst") << PICKLE("(K\x01iargparse\nNamespace\n.")
                          << Value::object(u"argparse"_s, u"Namespace"_s, Value::tuple({1}));
    QTest::newRow("defaultdict") << PICKLE("ccollections\ndefaultdict\nc__builtin__\nlist\n\x85"
                                           "R(K\x01K\x02u.")
                                 << Value::dict({{1, 2}});
    QTest::newRow("dict subclass")
        << PICKLE("cmy.mod\nAttrDict\n)\x81(K\x01K\x02u.")
        << Value::object(u"my.mod"_s, u"AttrDict"_s, Value::tuple({Value::dict({{1, 2}})}));
    QTest::newRow("cycle cut") << PICKLE("]q\x00h\x00"
                                         "a.")
                               << Value::list({Value()});
    QTest::newRow("numpy f32 protocol 2")
        << PICKLE("cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
                  "C\x01"
                  "b\x87R(K\x01K\x02\x85"
                  "cnumpy\ndtype\nX\x02\x00\x00\x00"
                  "f4\x89\x88\x87R(K\x03X"
                  "\x01\x00\x00\x00>NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
                  "C\x08?\x80"
                  "\x00\x00@\x00\x00\x00tb.")
        << Value(Tensor::fromFloats(std::initializer_list<float>{1.0f, 2.0f}, {2}));
    QTest::newRow("numpy scalar") << PICKLE("cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\nX"
                                            "\x02\x00\x00\x00i2\x89\x88\x87R(K\x03X\x01\x00\x00"
                                            "\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbC"
                                            "\x02\xfe\xff\x86R.")
                                  << Value(-2);
}

void TestCheckpointReader::pickleOpcodes()
{
    QFETCH(QByteArray, body);
    QFETCH(Value, expected);
    Result<CheckpointFile> read = readPickle(body);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->format, CheckpointFormat::Pickle);
    QVERIFY2(read->root == expected,
             qPrintable(QString::fromUtf8(QJsonDocument(describe(read->root)).toJson())));
}

void TestCheckpointReader::pickleWarnings()
{
    // Unknown classes and calls stay inert; the warning names the class and the place.
    Result<CheckpointFile> read = readPickle(
        PICKLE("}(X\x05\x00\x00\x00outer}X\x05\x00\x00\x00innercposix\nsystem\nX\x05\x00\x00"
               "\x00touch\x85Rsu."));
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->warnings.size(), 1);
    QCOMPARE(
        read->warnings[0],
        uR"(root["outer"]["inner"]: a call of posix.system kept as an inert object (not executed))"_s);
    const Value call = read->root.value(u"outer").value(u"inner");
    QCOMPARE(call.typeName(), u"posix.system"_s);
    QCOMPARE(call.objectArgs(), Value::tuple({"touch"}));

    read = readPickle(PICKLE("(cmy.mod\nThing\n)\x81}X\x01\x00\x00\x00xK\x01sbh\x00l."));
    QVERIFY(!read.ok()); // memo 0 never stored
    read = readPickle(PICKLE("(cmy.mod\nThing\n)\x81q\x00}X\x01\x00\x00\x00xK\x01sbh\x00l."));
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->warnings.size(), 1); // once, at its first place
    QVERIFY(read->warnings[0].startsWith(u"root[0]: my.mod.Thing kept as an inert object"_s));
    QCOMPARE(read->root.at(1).state(), Value::dict({{"x", 1}}));

    // Many inert objects: the list of warnings is capped.
    QByteArray many = "(";
    for (int i = 0; i < 200; ++i)
        many += "cmy.mod\nThing\n)\x81";
    read = readPickle(many + "l.");
    QVERIFY(read.ok());
    QCOMPARE(read->warnings.size(), 51);
    QVERIFY(read->warnings.last().contains(u"150 more"_s));
}

void TestCheckpointReader::hostileFiles_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("error");
    QTest::addColumn<QString>("warning");
    for (const QJsonValue &entry : m_manifest[u"hostile"].toArray()) {
        QTest::newRow(qPrintable(entry[u"name"].toString()))
            << entry[u"file"].toString() << entry[u"error"].toString()
            << entry[u"warning"].toString();
    }
}

void TestCheckpointReader::hostileFiles()
{
    QFETCH(QString, file);
    QFETCH(QString, error);
    QFETCH(QString, warning);
    Result<CheckpointFile> read = readCheckpoint(path(file));
    if (!error.isEmpty()) {
        QVERIFY2(
            !read.ok(),
            qPrintable(describe(read.ok() ? read->root : Value()).value(u"type"_s).toString()));
        QVERIFY2(read.errorMessage().startsWith(u"Cannot read checkpoint “"_s + path(file)),
                 qPrintable(read.errorMessage()));
        QVERIFY2(read.errorMessage().contains(error), qPrintable(read.errorMessage()));
    }
    if (!warning.isEmpty()) {
        QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
        QVERIFY2(containsText(read->warnings, warning), qPrintable(read->warnings.join(u'\n')));
    }
    QVERIFY(!QFile::exists(path(u"MARKER"_s)));
}

void TestCheckpointReader::truncatedFiles()
{
    // Every prefix of small files, and ~150 of each large one: an error naming the truncation,
    // never a crash or a value.
    QRandomGenerator random(20240611);
    const QStringList files{u"tensors_zip.pt"_s,      u"tensors_legacy.pth"_s,
                            u"protocol5.pt"_s,        u"numpy.pt"_s,
                            u"scripted.pt"_s,         u"zoo.safetensors"_s,
                            u"plain.pkl"_s,           u"resnet18_zip.pt"_s,
                            u"resnet18_legacy.pth"_s, u"resnet18.safetensors"_s,
                            u"lightning.pt"_s};
    qint64 reads = 0;
    qint64 slowest = 0;
    for (const QString &name : files) {
        const QByteArray whole = readAll(path(name));
        QVERIFY(!whole.isEmpty());
        QList<qsizetype> cuts;
        if (whole.size() <= 40000) {
            for (qsizetype cut = 0; cut < whole.size(); ++cut)
                cuts.append(cut);
        } else {
            for (int i = 0; i < 150; ++i)
                cuts.append(qsizetype(random.bounded(quint64(whole.size()))));
            for (qsizetype back = 1; back <= 64; ++back)
                cuts.append(whole.size() - back);
        }
        for (const qsizetype cut : std::as_const(cuts)) {
            QElapsedTimer timer;
            timer.start();
            Result<CheckpointFile> read
                = readCheckpoint(QByteArray::fromRawData(whole.constData(), cut), {}, name);
            slowest = std::max(slowest, timer.elapsed());
            ++reads;
            QVERIFY2(!read.ok(), qPrintable(name + u" cut at "_s + QString::number(cut)));
            const QString message = read.errorMessage();
            // The first bytes cannot tell a format yet.
            QVERIFY2(cut < 10 || message.contains(u"ends early"_s),
                     qPrintable(name + u" cut at "_s + QString::number(cut) + u": "_s + message));
        }
    }
    qInfo("%lld truncated reads, the slowest took %lld ms", reads, slowest);
}

void TestCheckpointReader::flippedBytes()
{
    // Random damage: a value or an error, never a crash or a hang. With checksums off the damage
    // reaches the pickle interpreter too.
    QRandomGenerator random(7);
    ReadOptions unchecked;
    unchecked.verifyChecksums = false;
    const QStringList files{u"tensors_zip.pt"_s,       u"tensors_legacy.pth"_s, u"protocol5.pt"_s,
                            u"protocol2_legacy.pth"_s, u"numpy.pt"_s,           u"scripted.pt"_s,
                            u"zoo.safetensors"_s,      u"lightning.pt"_s,       u"plain.pkl"_s};
    int errors = 0;
    int values = 0;
    qint64 slowest = 0;
    for (const QString &name : files) {
        const QByteArray whole = readAll(path(name));
        for (int i = 0; i < 300; ++i) {
            QByteArray damaged = whole;
            const int flips = 1 + int(random.bounded(4));
            for (int k = 0; k < flips; ++k) {
                damaged[qsizetype(random.bounded(quint64(damaged.size())))]
                    ^= char(1 + random.bounded(255));
            }
            QElapsedTimer timer;
            timer.start();
            for (const ReadOptions &options : {ReadOptions{}, unchecked}) {
                Result<CheckpointFile> read = readCheckpoint(damaged, options, name);
                if (read.ok()) {
                    ++values;
                    describe(read->root); // every value reachable and consistent
                } else {
                    ++errors;
                    QVERIFY(read.errorMessage().startsWith(u"Cannot read checkpoint “"_s + name));
                }
            }
            slowest = std::max(slowest, timer.elapsed());
        }
    }
    qInfo("flipped bytes: %d errors, %d values, slowest %lld ms", errors, values, slowest);
    QVERIFY(errors > 0);
    QVERIFY(!QFile::exists(path(u"MARKER"_s)));
}

void TestCheckpointReader::cancel()
{
    std::atomic_bool cancelled = true;
    ReadOptions options;
    options.cancel = &cancelled;
    Result<CheckpointFile> read = readCheckpoint(path(u"resnet18_zip.pt"_s), options);
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(u"cancelled"_s), qPrintable(read.errorMessage()));
    // Told apart from a failure by its code, which survives the reader's "Cannot read" prefix.
    QCOMPARE(read.error().code, ErrorCode::Cancelled);
    QVERIFY(read.isCancellation());
}

// The one walk over values (checkpointwalk.h): depth first in order, paths, skipping subtrees,
// stopping, keys on request; the reader's storagesOf() goes through it.
void TestCheckpointReader::walkValuesVisitsInOrder()
{
    const Tensor a = Tensor::fromFloats(std::vector<float>{1, 2, 3, 4}, {2, 2});
    const Tensor b = Tensor::fromFloats(std::vector<float>{5}, {1});
    const Value module = Value::object(
        u"torch.nn.modules.linear"_s, u"Linear"_s, Value::tuple({Value(b)}),
        Value::dict(
            {{u"_parameters"_s, Value::orderedDict({{u"weight"_s, Value(a.view(2, {2}, {1}))}})}}));
    const Value root
        = Value::dict({{u"list"_s, Value::list({1, Value(a)})},
                       {Value(a), u"tensor key"_s},
                       {u"model"_s, module},
                       {u"sd"_s,
                        Value::orderedDict({{u"w"_s, Value(a)}},
                                           Value::dict({{u"_metadata"_s, Value::dict()}}))}});

    // Every value with its path, as text.
    const auto describe = [](WalkPath path, const Value &value) -> QString {
        QString text;
        for (const WalkStep &step : path) {
            switch (step.kind) {
            case WalkStep::Kind::Item:
                text += u'[' + QString::number(step.index) + u']';
                break;
            case WalkStep::Kind::Entry:
                text += u'[' + (step.key->isString() ? step.key->toString() : step.key->typeName())
                    + u']';
                break;
            case WalkStep::Kind::Key:
                text += u"{key " + QString::number(step.index) + u'}';
                break;
            case WalkStep::Kind::DictState:
                text += u".state"_s;
                break;
            case WalkStep::Kind::ObjectArgs:
                text += u".args"_s;
                break;
            case WalkStep::Kind::ObjectState:
                text += u".__dict__"_s;
                break;
            }
        }
        return (text.isEmpty() ? u"root"_s : text) + u' ' + value.typeName();
    };
    QStringList seen;
    QVERIFY(walkValues(root, [&](WalkPath path, const Value &value) {
        seen.append(describe(path, value));
        return WalkAction::Continue;
    }));
    const QStringList expected{
        u"root dict"_s,
        u"[list] list"_s,
        u"[list][0] int"_s,
        u"[list][1] torch.Tensor"_s,
        u"[torch.Tensor] str"_s,
        u"[model] torch.nn.modules.linear.Linear"_s,
        u"[model].args tuple"_s,
        u"[model].args[0] torch.Tensor"_s,
        u"[model].__dict__ dict"_s,
        u"[model].__dict__[_parameters] collections.OrderedDict"_s,
        u"[model].__dict__[_parameters][weight] torch.Tensor"_s,
        u"[sd] collections.OrderedDict"_s,
        u"[sd][w] torch.Tensor"_s,
        u"[sd].state dict"_s,
        u"[sd].state[_metadata] dict"_s,
    };
    QCOMPARE(seen, expected);

    // Keys on request, each before its value.
    seen.clear();
    WalkOptions keys;
    keys.keys = true;
    walkValues(
        root,
        [&](WalkPath path, const Value &value) {
            if (path.size() == 1)
                seen.append(describe(path, value));
            return path.empty() ? WalkAction::Continue : WalkAction::SkipChildren;
        },
        keys);
    QCOMPARE(seen.mid(0, 4),
             (QStringList{u"{key 0} str"_s, u"[list] list"_s, u"{key 1} torch.Tensor"_s,
                          u"[torch.Tensor] str"_s}));

    // Skipping a subtree, stopping.
    int tensors = 0;
    walkValues(root, [&](WalkPath path, const Value &value) {
        if (!path.empty() && path.back().kind == WalkStep::Kind::ObjectArgs)
            return WalkAction::SkipChildren;
        tensors += value.isTensor() ? 1 : 0;
        return WalkAction::Continue;
    });
    QCOMPARE(tensors, 3); // [list][1], the module's weight, [sd][w]: not the args' tensor
    int visited = 0;
    QVERIFY(!walkValues(root, [&](WalkPath, const Value &value) {
        ++visited;
        return value.isTensor() ? WalkAction::Stop : WalkAction::Continue;
    }));
    QCOMPARE(visited, 4);

    // storagesOf: the tensor key's storage counts too; a and its view share one.
    const QList<StoragePtr> storages = storagesOf(root);
    QCOMPARE(storages.size(), 2);
    QCOMPARE(storages[0], a.storage);
    QCOMPARE(storages[1], b.storage);

    // Paths as deep as the value.
    Value deep = Value::list();
    for (int i = 0; i < 2000; ++i)
        deep = Value::list({deep});
    qsizetype deepest = 0;
    walkValues(deep, [&](WalkPath path, const Value &) {
        deepest = std::max(deepest, qsizetype(path.size()));
        return WalkAction::Continue;
    });
    QCOMPARE(deepest, qsizetype(2000));
}

// The 101-byte pickle of issue 13 (found by tests/fuzz/run_fuzz.sh in an eight-minute run; also
// tests/fuzz/corpus/issue13_cycle.pkl): lists that contain themselves through DUP, APPEND and
// BUILD sent isEmptyState() into unbounded recursion, and `inspect` died with SIGSEGV.
const QByteArray kIssue13Pickle
    = QByteArray::fromBase64("gAJdXV2AAooKbPycBwVLUEb5j49dXWFdYV1hXWFdgAJdXV1dYYACigps/"
                             "JwHBUtQRvmPj11dYV1hXTJhXWFdgAJdXV1dYV1h"
                             "XWFdYV1hXWFiXWJdYV1dYWFhXV1hYl1iYWJiYj4=");

void TestCheckpointReader::cyclicAndDeepPickles()
{
    // A value or an error, never a crash: cycles are cut into None with a warning where the
    // pickle's objects become Values, so no walk downstream can meet one.
    QCOMPARE(kIssue13Pickle.size(), 101);
    for (const auto mode : {ReadOptions::TensorData::Eager, ReadOptions::TensorData::OnDemand}) {
        ReadOptions options;
        options.tensorData = mode;
        const Result<CheckpointFile> crash = readCheckpoint(kIssue13Pickle, options, u"crash"_s);
        QVERIFY(!crash.ok());
        QVERIFY2(crash.errorMessage().startsWith(u"Cannot read checkpoint “crash”: "_s),
                 qPrintable(crash.errorMessage()));
    }
    // The same file read from disk, as inspect does.
    QVERIFY(test::writeFile(path(u"issue13.pkl"_s), kIssue13Pickle));
    QVERIFY(!readCheckpoint(path(u"issue13.pkl"_s)).ok());

    // A list that contains itself set as an object's state (BUILD): kept, the cycle cut.
    Result<CheckpointFile> read = readPickle(PICKLE("cmy.mod\nThing\n)\x81]q\x00h\x00"
                                                    "ab."));
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->root,
             Value::object(u"my.mod"_s, u"Thing"_s, Value::tuple(), Value::list({Value()})));
    QVERIFY2(containsText(read->warnings, u"a reference cycle was cut here (None)"_s),
             qPrintable(read->warnings.join(u'\n')));
    // BUILD on a builtin list with itself as the state.
    read = readPickle(PICKLE("]q\x00h\x00"
                             "ah\x00"
                             "b."));
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->root, Value::list({Value()}));

    // Two BUILDs with dict states whose keys are tuples (every insert appends an entry): the
    // second merges into the first's state dict (dictInsertAll() iterates a copy, so merging a
    // dict into itself cannot read freed memory).
    read = readPickle(PICKLE("cmy.mod\nThing\n)\x81}(K\x01\x85K\x03ub}(K\x02\x85K\x04K\x03\x85"
                             "K\x05ub."));
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(
        read->root,
        Value::object(
            u"my.mod"_s, u"Thing"_s, Value::tuple(),
            Value::dict({{Value::tuple({1}), 3}, {Value::tuple({2}), 4}, {Value::tuple({3}), 5}})));

    // A million nested lists as a BUILD state: answered without recursion, then refused for
    // its depth with a clear error.
    constexpr int kDepth = 1000000;
    QByteArray deep = "cmy.mod\nThing\n)\x81";
    deep += QByteArray(kDepth, ']') + QByteArray(kDepth - 1, 'a') + "b.";
    read = readPickle(deep);
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(u"levels deep"_s), qPrintable(read.errorMessage()));
}

void TestCheckpointReader::refusesWhatIsNotAFile()
{
    // Before anything opens it: a FIFO without a writer would block open() forever (CTest's
    // timeout is this test's only guard against that).
    const QString fifo = path(u"pipe.pt"_s);
    QVERIFY(::mkfifo(QFile::encodeName(fifo).constData(), 0600) == 0);
    for (const auto mode : {ReadOptions::TensorData::Eager, ReadOptions::TensorData::OnDemand}) {
        ReadOptions options;
        options.tensorData = mode;
        const Result<CheckpointFile> read = readCheckpoint(fifo, options);
        QVERIFY(!read.ok());
        QCOMPARE(read.errorMessage(),
                 u"Cannot read checkpoint “"_s + fifo
                     + u"”: it is a FIFO (named pipe), not a file: save what "
                       u"it carries to a file and open that"_s);
    }
    Result<CheckpointFile> read = readCheckpoint(m_dir.path());
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().endsWith(u"it is a folder, not a file"_s),
             qPrintable(read.errorMessage()));
    read = readCheckpoint(u"/dev/null"_s);
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(u"it is a character device, not a file"_s),
             qPrintable(read.errorMessage()));
    read = readCheckpoint(path(u"missing.pt"_s));
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(u"No such file"_s), qPrintable(read.errorMessage()));
    QCOMPARE(read.error().code, ErrorCode::Io);
}

void TestCheckpointReader::onDemandReadsTheStructureOnly()
{
    ReadOptions lazy;
    lazy.tensorData = ReadOptions::TensorData::OnDemand;
    for (const QString &name : {u"resnet18_zip.pt"_s, u"zoo.safetensors"_s, u"tensors_zip.pt"_s}) {
        const Result<CheckpointFile> eager = readCheckpoint(path(name));
        const Result<CheckpointFile> structure = readCheckpoint(path(name), lazy);
        QVERIFY2(eager.ok() && structure.ok(), qPrintable(structure.errorMessage()));
        const QList<StoragePtr> loaded = storagesOf(eager->root);
        const QList<StoragePtr> left = storagesOf(structure->root);
        QCOMPARE(left.size(), loaded.size());
        for (qsizetype i = 0; i < left.size(); ++i) {
            // Nothing read yet: each storage knows its size and where its bytes are.
            QCOMPARE(left[i]->byteCount(), loaded[i]->bytes.size());
            QCOMPARE(left[i]->source != nullptr, loaded[i]->bytes.size() > 0);
            QVERIFY(left[i]->bytes.isEmpty());
            QCOMPARE(left[i]->data().value(), loaded[i]->bytes);
        }
        QCOMPARE(describe(structure->root), describe(eager->root));
    }
    // Legacy files are read whole either way.
    const Result<CheckpointFile> legacy = readCheckpoint(path(u"tensors_legacy.pth"_s), lazy);
    QVERIFY(legacy.ok());
    for (const StoragePtr &storage : storagesOf(legacy->root))
        QVERIFY(!storage->source);
}

void TestCheckpointReader::fileChangedUnderAReader()
{
    // torch.save rewrites an existing file in place. What a reader left in the file then gives an
    // error that says the file changed, never SIGBUS (a memory-mapped read would die here).
    const QString name = path(u"changing.pt"_s);
    QVERIFY(QFile::copy(path(u"resnet18_zip.pt"_s), name));
    const Result<CheckpointFile> eager = readCheckpoint(name);
    ReadOptions lazy;
    lazy.tensorData = ReadOptions::TensorData::OnDemand;
    const Result<CheckpointFile> structure = readCheckpoint(name, lazy);
    QVERIFY(eager.ok() && structure.ok());
    QFile file(name);
    QVERIFY(file.resize(file.size() / 2));

    const auto unreadable = [](const Value &root, QString *message) {
        int count = 0;
        forEachTensor(root, [&](WalkPath, const Tensor &tensor) {
            const TensorStats stats = computeTensorStats(tensor);
            if (stats.unreadable) {
                ++count;
                *message = stats.error;
                const Result<QByteArray> bytes = tensor.contiguousBytes();
                QVERIFY(!bytes.ok());
                QCOMPARE(bytes.errorMessage(), stats.error);
            } else {
                QVERIFY2(stats.error.isEmpty(), qPrintable(stats.error));
            }
        });
        return count;
    };
    QString message;
    QVERIFY(unreadable(structure->root, &message) > 10);
    QVERIFY2(message.startsWith(u"Cannot read checkpoint “"_s + name
                                + u"”: the file changed while it was being read (it was "_s),
             qPrintable(message));
    QVERIFY2(message.endsWith(u"read it again once it is fully written"_s), qPrintable(message));
    // Writing what was read: the same error, nothing written.
    const Status written = writeCheckpoint(path(u"copy_of_changing.pt"_s), structure->root);
    QVERIFY(!written.ok());
    QVERIFY2(written.errorMessage().contains(u"the file changed while it was being read"_s),
             qPrintable(written.errorMessage()));
    QVERIFY(!QFile::exists(path(u"copy_of_changing.pt"_s)));
    // What was read eagerly does not depend on the file any more.
    QCOMPARE(unreadable(eager->root, &message), 0);

    // Rewritten in place at the same size: the records' checksums tell, and the message says why.
    QVERIFY(file.remove());
    QVERIFY(QFile::copy(path(u"resnet18_zip.pt"_s), name));
    const Result<CheckpointFile> again = readCheckpoint(name, lazy);
    QVERIFY(again.ok());
    QVERIFY(file.open(QIODevice::ReadWrite));
    QVERIFY(file.seek(file.size() / 2));
    QVERIFY(file.write(QByteArray(4096, 'U')) == 4096);
    QVERIFY(file.setFileTime(QDateTime::currentDateTime().addSecs(10),
                             QFileDevice::FileModificationTime));
    file.close();
    QVERIFY(unreadable(again->root, &message) >= 1);
    QVERIFY2(message.contains(u"the file changed while it was being read (it was rewritten)"_s),
             qPrintable(message));
}

void TestCheckpointReader::zipBombBudget()
{
    // Four members of 16 MiB of zeros, about 16 KiB each on disk.
    const QString bomb = path(u"bomb.pt"_s);
    const test::ProcessResult made = test::runProcess(
        test::oraclePython(), {test::toolPath(u"make_zip_bomb.py"_s), bomb, u"4"_s, u"16"_s});
    QVERIFY2(made.exitCode == 0, made.err.constData());
    QVERIFY(QFileInfo(bomb).size() < (qint64(200) << 10));
    ReadOptions options;
    options.maxInflatedBytes = qint64(40) << 20;
    Result<CheckpointFile> read = readCheckpoint(bomb, options);
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(u"its compressed records inflate to more than the "
                                          u"40.0 MiB allowed for one read"_s),
             qPrintable(read.errorMessage()));
    QVERIFY2(read.errorMessage().contains(u"zip bomb"_s), qPrintable(read.errorMessage()));

    // On demand: the structure costs nothing, loads take from the budget, statistics stream.
    options.tensorData = ReadOptions::TensorData::OnDemand;
    read = readCheckpoint(bomb, options);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    const QList<StoragePtr> storages = storagesOf(read->root);
    QCOMPARE(storages.size(), 4);
    for (const StoragePtr &storage : storages)
        QCOMPARE(storage->byteCount(), qint64(16) << 20);
    QVERIFY(storages[0]->data().ok());
    QVERIFY(storages[0]->data().ok()); // kept: taken once
    QVERIFY(storages[1]->data().ok());
    const Result<QByteArray> third = storages[2]->data();
    QVERIFY(!third.ok());
    QVERIFY2(third.errorMessage().startsWith(u"Cannot read checkpoint “"_s + bomb + u"”: "_s),
             qPrintable(third.errorMessage()));
    QVERIFY2(third.errorMessage().contains(u"inflate to more than"_s),
             qPrintable(third.errorMessage()));
    forEachTensor(read->root, [](WalkPath, const Tensor &tensor) {
        const TensorStats stats = computeTensorStats(tensor);
        QVERIFY2(stats.error.isEmpty(), qPrintable(stats.error));
        QCOMPARE(stats.count, qint64(4) << 20);
        QCOMPARE(stats.zeros, stats.count);
        QCOMPARE(stats.max, 0.0);
    });
    // Within the default budget, the whole file reads.
    QVERIFY(readCheckpoint(bomb).ok());
}

QTEST_GUILESS_MAIN(TestCheckpointReader)
#include "tst_checkpointreader.moc"
