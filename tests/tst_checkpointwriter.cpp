// Checkpoint value model and writer. The oracle is Python's torch.load (torch 1.13 on our
// machines): every file written here is loaded by it and described as JSON, and that description
// must equal the one computed from the Value that was written (describe() mirrors the oracle's).
#include "checkpoint/checkpointvalue.h"
#include "checkpoint/checkpointwriter.h"

#include "testutil.h"

#include <QCryptographicHash>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>
#include <QtEndian>

#include <bit>
#include <cmath>
#include <limits>
#include <map>

using namespace ifs;
using namespace ifs::ckpt;
using namespace Qt::StringLiterals;

Q_DECLARE_METATYPE(ifs::ckpt::Value)
Q_DECLARE_METATYPE(ifs::ckpt::WriteOptions)

// A byte string literal with its embedded NULs.
#define PICKLE(literal) QByteArray(literal, sizeof(literal) - 1)

namespace {

constexpr qsizetype kHexLimit = 4096; // as the oracle's HEX_LIMIT

template<typename T>
QByteArray littleBytes(std::initializer_list<T> values)
{
    QByteArray bytes;
    for (const T value : values) {
        char data[sizeof(T)];
        qToLittleEndian<T>(value, data);
        bytes.append(data, sizeof(T));
    }
    return bytes;
}

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

QString sha256(const QByteArray &bytes)
{
    return QString::fromLatin1(QCryptographicHash::hash(bytes, QCryptographicHash::Sha256).toHex());
}

QJsonArray intArray(const QList<qint64> &values)
{
    QJsonArray array;
    for (const qint64 v : values)
        array.append(v);
    return array;
}

/// The oracle's description of what torch.load returns for `value` (map_location="cpu").
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
        case Value::Kind::Object:
            break;
        }
        return {{u"type"_s, u"object"_s}};
    }

private:
    QJsonObject tensor(const Tensor &t)
    {
        const QByteArray data = t.contiguousBytes().value();
        QJsonValue storageId = QJsonValue::Null;
        if (!t.storage->bytes.isEmpty()) {
            const auto [it, inserted] = m_ids.emplace(t.storage.get(), int(m_ids.size()));
            storageId = it->second;
        }
        QJsonObject out{
            {u"type"_s, t.parameter ? u"Parameter"_s : u"Tensor"_s},
            {u"dtype"_s, dtypeName(t.dtype())},
            {u"shape"_s, intArray(t.shape)},
            {u"stride"_s, intArray(t.stride)},
            {u"offset"_s, t.offset},
            {u"requires_grad"_s, t.requiresGrad},
            {u"device"_s, u"cpu"_s},
            {u"storage"_s, storageId},
            {u"storage_numel"_s, t.storage->numel()},
            {u"storage_sha256"_s, sha256(t.storage->bytes)},
            {u"sha256"_s, sha256(data)},
        };
        if (data.size() <= kHexLimit)
            out.insert(u"hex"_s, QString::fromLatin1(data.toHex()));
        return out;
    }

    std::map<const Storage *, int> m_ids;
};

QJsonObject describe(const Value &value)
{
    return Describer()(value);
}

/// Where two JSON values first differ, for a readable failure.
QString firstDifference(const QJsonValue &a, const QJsonValue &b, const QString &path = u"$"_s)
{
    if (a.type() != b.type() || (!a.isObject() && !a.isArray() && a != b)) {
        const auto text = [](const QJsonValue &v) {
            return v.isObject() || v.isArray()
                ? QString::fromUtf8(QJsonDocument(v.isObject() ? QJsonDocument(v.toObject())
                                                               : QJsonDocument(v.toArray()))
                                        .toJson(QJsonDocument::Compact))
                      .left(300)
                : QString::fromUtf8(QJsonDocument(QJsonArray{v}).toJson(QJsonDocument::Compact));
        };
        return path + u": " + text(a) + u" vs " + text(b);
    }
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

/// What every file must satisfy: a sound zip with aligned records, only allowed globals and
/// opcodes, and torch.load succeeds. Empty when fine.
QString containerProblems(const QJsonObject &report)
{
    QStringList problems;
    const QJsonObject zip = report[u"zip"].toObject();
    if (!zip[u"testzip"].isNull())
        problems << u"testzip: "_s + zip[u"testzip"].toString();
    if (!zip[u"misaligned"].toArray().isEmpty())
        problems << u"misaligned records"_s;
    if (zip.contains(u"local_header_mismatch"))
        problems << u"local headers disagree with the central directory"_s;
    if (zip.contains(u"unzip") && !zip[u"unzip"][u"ok"].toBool())
        problems << u"unzip -t: "_s + zip[u"unzip"][u"output"].toString();
    if (zip.contains(u"compressed"))
        problems << u"compressed records"_s;
    if (zip[u"byteorder"].toString() != u"little")
        problems << u"byteorder record"_s;
    if (zip[u"version"].toString() != u"3\n")
        problems << u"version record"_s;
    const QJsonObject pickle = report[u"pickle"].toObject();
    if (!pickle[u"disallowed"].toArray().isEmpty())
        problems << u"globals off the allow-list: "_s
                + QString::fromUtf8(QJsonDocument(pickle[u"disallowed"].toArray()).toJson());
    if (!pickle[u"unsupported_opcodes"].toArray().isEmpty())
        problems << u"opcodes the weights-only unpickler lacks: "_s
                + QString::fromUtf8(
                        QJsonDocument(pickle[u"unsupported_opcodes"].toArray()).toJson());
    if (report[u"load"].toObject().contains(u"error"))
        problems << u"torch.load: "_s + report[u"load"][u"error"].toString();
    return problems.join(u"; ");
}

} // namespace

class TestCheckpointWriter : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void init();

    // The value model alone.
    void dtypeTables();
    void valueBuildingAndAccess();
    void valueSharingAndEquality();
    void tensorLayout();
    void tensorLayoutErrors_data();
    void tensorLayoutErrors();

    // Exact pickle bytes for tiny values.
    void picklesAsExpected_data();
    void picklesAsExpected();

    // Files loaded by torch.
    void everyDType();
    void scalarsEmptyAndShared();
    void plainValues();
    void weightsOnlyOnThisTorch();
    void deviceTags();
    void loadsIntoModules();
    void zipLayout();
    void largeTensor();
    void deterministic();

    // Refusals.
    void unwritableDestination_data();
    void unwritableDestination();
    void refusedValues_data();
    void refusedValues();
    void refusalLeavesExistingFile();

private:
    QString path(const QString &name) const { return m_dir->filePath(name); }
    /// Writes `value` to `name` in the sandbox; fails the test on an error.
    bool write(const QString &name, const Value &value, const WriteOptions &options = {});
    /// Runs the oracle's inspect on the files; reports keyed by file name.
    bool inspect(const QStringList &names, QJsonObject *reports);
    /// inspect() + containerProblems() + description equal to the written value's.
    bool loadsAsWritten(const QString &name, const QJsonObject &report, const Value &value);

    std::unique_ptr<QTemporaryDir> m_dir;
};

void TestCheckpointWriter::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    if (qEnvironmentVariableIsSet("IFS_KEEP_TEST_FILES")) { // to look at the files afterwards
        m_dir->setAutoRemove(false);
        qInfo().noquote() << "files in" << m_dir->path();
    }
}

bool TestCheckpointWriter::write(const QString &name, const Value &value,
                                 const WriteOptions &options)
{
    const Status status = writeCheckpoint(path(name), value, options);
    if (!status.ok())
        qWarning().noquote() << status.errorMessage();
    return status.ok();
}

bool TestCheckpointWriter::inspect(const QStringList &names, QJsonObject *reports)
{
    QStringList files;
    for (const QString &name : names)
        files << path(name);
    const test::ProcessResult run
        = test::runOracle(u"checkpointwriter_oracle.py"_s, QStringList{u"inspect"_s} + files);
    const QJsonDocument document = QJsonDocument::fromJson(run.out);
    if (run.exitCode != 0 || !document.isObject()) {
        qWarning().noquote() << "oracle failed:" << run.err.right(3000);
        return false;
    }
    const QJsonObject all = document.object();
    for (const QString &name : names)
        reports->insert(name, all[path(name)]);
    return true;
}

bool TestCheckpointWriter::loadsAsWritten(const QString &name, const QJsonObject &report,
                                          const Value &value)
{
    const QString problems = containerProblems(report);
    if (!problems.isEmpty()) {
        qWarning().noquote() << name << problems;
        return false;
    }
    const QString difference = firstDifference(report[u"load"], describe(value));
    if (!difference.isEmpty()) {
        qWarning().noquote() << name << "torch.load vs written:" << difference;
        return false;
    }
    return true;
}

// --- The value model -----------------------------------------------------------------------------

void TestCheckpointWriter::dtypeTables()
{
    const QList<int> sizes = {4, 8, 2, 2, 1, 2, 4, 8, 1, 1, 8, 16};
    QCOMPARE(std::size(kAllDTypes), std::size_t(12));
    for (std::size_t i = 0; i < std::size(kAllDTypes); ++i) {
        const DType dtype = kAllDTypes[i];
        QCOMPARE(int(dtype), int(i));
        QCOMPARE(elementSize(dtype), sizes[qsizetype(i)]);
        QVERIFY(dtypeFromName(dtypeName(dtype)) == dtype);
        QVERIFY(dtypeFromStorageClass(storageClassName(dtype)) == dtype);
    }
    QCOMPARE(dtypeName(DType::BFloat16), u"bfloat16"_s);
    QCOMPARE(storageClassName(DType::UInt8), u"ByteStorage"_s);
    QCOMPARE(storageClassName(DType::Int8), u"CharStorage"_s);
    QCOMPARE(storageClassName(DType::Complex64), u"ComplexFloatStorage"_s);
    QVERIFY(dtypeFromName(u"long") == DType::Int64);
    QVERIFY(dtypeFromName(u"half") == DType::Float16);
    QVERIFY(dtypeFromName(u"cdouble") == DType::Complex128);
    QVERIFY(!dtypeFromName(u"float8"));
    QVERIFY(!dtypeFromStorageClass(u"QInt8Storage"));
    QVERIFY(isFloatingPoint(DType::BFloat16) && isFloatingPoint(DType::Complex64));
    QVERIFY(!isFloatingPoint(DType::Bool) && !isFloatingPoint(DType::Int64));
}

void TestCheckpointWriter::valueBuildingAndAccess()
{
    const Tensor weight = Tensor::fromFloats(std::vector<float>{1, 2, 3, 4}, {2, 2});
    const Value root = Value::dict({
        {"epoch", 3},
        {"lr", 0.5},
        {"name", "resnet"},
        {"model", Value::orderedDict({{"fc.weight", weight}})},
        {"state", Value::dict({{0, Value::dict({{"step", 10}})}})},
        {"classes", Value::list({"cat", "dog"})},
        {"shape", Value::size({2, 2})},
        {"device", Value::device(u"cuda:0"_s)},
        {"dtype", Value::dtype(DType::BFloat16)},
        {"none", nullptr},
    });
    QCOMPARE(root.kind(), Value::Kind::Dict);
    QCOMPARE(root.size(), 10);
    QCOMPARE(root.value(u"epoch").toInt(), 3);
    QCOMPARE(root.value(u"epoch").toDouble(), 3.0);
    QCOMPARE(root.value(u"lr").toDouble(), 0.5);
    QCOMPARE(root.value(u"name").toString(), u"resnet"_s);
    QVERIFY(root.value(u"model").isOrderedDict() && root.value(u"model").isDict());
    QCOMPARE(root.value(u"model").value(u"fc.weight").toTensor().shape, QList<qint64>({2, 2}));
    QVERIFY(root.value(u"state").find(0));
    QCOMPARE(root.value(u"state").find(0)->value(u"step").toInt(), 10);
    QVERIFY(!root.value(u"state").find(1));
    QCOMPARE(root.value(u"classes").at(1).toString(), u"dog"_s);
    QVERIFY(root.value(u"classes").at(2).isNone());
    QCOMPARE(root.value(u"shape").toSize(), QList<qint64>({2, 2}));
    QCOMPARE(root.value(u"device").toString(), u"cuda:0"_s);
    QCOMPARE(root.value(u"dtype").toDType(), DType::BFloat16);
    QVERIFY(root.contains(u"none") && root.value(u"none").isNone());
    QVERIFY(!root.contains(u"missing") && root.value(u"missing").isNone());

    // Wrong kinds give defaults.
    QCOMPARE(root.value(u"name").toInt(), 0);
    QVERIFY(root.value(u"epoch").toString().isEmpty());
    QVERIFY(root.value(u"epoch").items().isEmpty());
    QVERIFY(root.value(u"epoch").entries().isEmpty());
    QVERIFY(!root.value(u"epoch").toTensor().storage);

    QCOMPARE(Value(true).typeName(), u"bool"_s);
    QCOMPARE(Value(qint64(1) << 40).typeName(), u"int"_s);
    QCOMPARE(Value(quint32(4000000000u)).toInt(), 4000000000LL);
    QCOMPARE(Value(1.0f).typeName(), u"float"_s);
    QCOMPARE(Value::orderedDict().typeName(), u"collections.OrderedDict"_s);
    QCOMPARE(Value(weight.asParameter()).typeName(), u"torch.nn.Parameter"_s);
    QCOMPARE(Value::object(u"argparse"_s, u"Namespace"_s).typeName(), u"argparse.Namespace"_s);
    QCOMPARE(Value::object(u"argparse"_s, u"Namespace"_s).objectName(), u"Namespace"_s);
}

void TestCheckpointWriter::valueSharingAndEquality()
{
    Value a = Value::dict({{"x", 1}});
    Value b = a;
    b.insert("x", 2); // replaces in place
    b.insert("y", 3);
    QCOMPARE(a.size(), 1);
    QCOMPARE(a.value(u"x").toInt(), 1);
    QCOMPARE(b.size(), 2);
    QCOMPARE(b.value(u"x").toInt(), 2);
    QCOMPARE(b.entries()[1].first.toString(), u"y"_s);

    b.insert(true, "one");
    b.insert(1, "uno"); // 1 == True in Python: the same key
    QCOMPARE(b.size(), 3);
    QCOMPARE(b.find(1)->toString(), u"uno"_s);

    Value list = Value::list();
    const Value before = list;
    list.append(1);
    list.append("two");
    QCOMPARE(before.size(), 0);
    QCOMPARE(list.size(), 2);
    Value scalar = 5;
    scalar.append(1); // not a list: ignored
    QCOMPARE(scalar, Value(5));

    QVERIFY(Value(1) == Value(1.0));
    QVERIFY(Value(true) == Value(1));
    QVERIFY(Value(qint64(1) << 53) == Value(double(qint64(1) << 53)));
    QVERIFY(!(Value((qint64(1) << 53) + 1) == Value(double(qint64(1) << 53))));
    QVERIFY(!(Value(std::nan("")) == Value(std::nan(""))));
    QVERIFY(!(Value("1") == Value(1)));
    QVERIFY(!(Value::list({1}) == Value::tuple({1})));
    QVERIFY(!(Value::dict() == Value::orderedDict()));
    QVERIFY(Value::orderedDict({{"a", 1}}) == Value::orderedDict({{"a", 1.0}}));
    QVERIFY(!(Value::orderedDict({{"a", 1}}) == Value::orderedDict({{"a", 1}}, Value::dict())));

    // Tensors compare by content, not by storage identity.
    const Tensor t1 = Tensor::fromFloats(std::vector<float>{1, 2}, {2});
    const Tensor t2 = Tensor::fromFloats(std::vector<float>{1, 2}, {2});
    const Tensor t3 = Tensor::fromFloats(std::vector<float>{1, 3}, {2});
    QVERIFY(Value(t1) == Value(t2));
    QVERIFY(!(Value(t1) == Value(t3)));
    QVERIFY(!(Value(t1) == Value(t1.asParameter())));
    QVERIFY(!Value::sameKey(Value(t1), Value(t2)));
    QVERIFY(Value::sameKey(Value(t1), Value(t1)));
    QVERIFY(Value::sameKey(Value::tuple({1, "a"}), Value::tuple({1.0, "a"})));
}

void TestCheckpointWriter::tensorLayout()
{
    std::vector<float> values(12);
    for (int i = 0; i < 12; ++i)
        values[std::size_t(i)] = float(i);
    const Tensor base = Tensor::fromFloats(values, {3, 4});
    QCOMPARE(base.stride, QList<qint64>({4, 1}));
    QCOMPARE(base.numel(), 12);
    QCOMPARE(base.byteSize(), 48);
    QVERIFY(base.isContiguous());
    QVERIFY(base.checkLayout().ok());
    QCOMPARE(Tensor::contiguousStrides({2, 0, 3}), QList<qint64>({3, 3, 1}));
    QCOMPARE(Tensor::contiguousStrides({}), QList<qint64>());

    const auto floats = [](const Tensor &t) {
        const QByteArray bytes = t.contiguousBytes().value();
        QList<float> out(bytes.size() / 4);
        std::memcpy(out.data(), bytes.constData(), std::size_t(bytes.size()));
        return out;
    };
    const Tensor transposed = base.view(0, {4, 3}, {1, 4});
    QVERIFY(!transposed.isContiguous());
    QCOMPARE(floats(transposed), QList<float>({0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
    const Tensor row = base.view(4, {4}, {1});
    QCOMPARE(floats(row), QList<float>({4, 5, 6, 7}));
    const Tensor column = base.view(2, {3}, {4});
    QCOMPARE(floats(column), QList<float>({2, 6, 10}));
    const Tensor broadcast = base.view(8, {2, 4}, {0, 1});
    QCOMPARE(floats(broadcast), QList<float>({8, 9, 10, 11, 8, 9, 10, 11}));
    const Tensor scalar = base.view(11, {}, {});
    QCOMPARE(scalar.numel(), 1);
    QCOMPARE(floats(scalar), QList<float>({11}));
    const Tensor empty = base.view(100, {0, 5}, {5, 1}); // no elements: any offset
    QVERIFY(empty.checkLayout().ok());
    QCOMPARE(empty.numel(), 0);
    QVERIFY(empty.contiguousBytes().value().isEmpty());
    QVERIFY(base.view(0, {1, 12}, {99, 1}).isContiguous()); // size-1 strides do not matter

    const Tensor zeros = Tensor::zeros(DType::Complex128, {2, 3});
    QCOMPARE(zeros.storage->bytes, QByteArray(96, '\0'));
    QCOMPARE(zeros.dtype(), DType::Complex128);
    QCOMPARE(zeros.device(), u"cpu"_s);
}

void TestCheckpointWriter::tensorLayoutErrors_data()
{
    QTest::addColumn<qint64>("offset");
    QTest::addColumn<QList<qint64>>("shape");
    QTest::addColumn<QList<qint64>>("stride");
    QTest::addColumn<QString>("expected");
    QTest::newRow("too small") << qint64(0) << QList<qint64>{2, 3} << QList<qint64>{3, 1}
                               << u"its storage holds 5 float32 elements, the view [2, 3] with "
                                  "stride [3, 1] at offset 0 needs 6"_s;
    QTest::newRow("offset past the end")
        << qint64(5) << QList<qint64>{} << QList<qint64>{} << u"needs 6"_s;
    QTest::newRow("stride past the end")
        << qint64(0) << QList<qint64>{2} << QList<qint64>{5} << u"needs 6"_s;
    QTest::newRow("dimensions") << qint64(0) << QList<qint64>{2} << QList<qint64>{1, 1}
                                << u"has 1 dimensions but the stride [1, 1] has 2"_s;
    QTest::newRow("negative size")
        << qint64(0) << QList<qint64>{-1} << QList<qint64>{1} << u"negative size"_s;
    QTest::newRow("negative stride")
        << qint64(4) << QList<qint64>{2} << QList<qint64>{-1} << u"negative stride"_s;
    QTest::newRow("negative offset")
        << qint64(-1) << QList<qint64>{1} << QList<qint64>{1} << u"negative storage offset"_s;
    QTest::newRow("overflow") << qint64(0) << QList<qint64>{qint64(1) << 40, qint64(1) << 40}
                              << QList<qint64>{1, 1} << u"overflows"_s;
}

void TestCheckpointWriter::tensorLayoutErrors()
{
    QFETCH(qint64, offset);
    QFETCH(QList<qint64>, shape);
    QFETCH(QList<qint64>, stride);
    QFETCH(QString, expected);
    const Tensor base = Tensor::fromFloats(std::vector<float>{1, 2, 3, 4, 5}, {5});
    const Tensor view = base.view(offset, shape, stride);
    const Status status = view.checkLayout();
    QVERIFY(!status.ok());
    QVERIFY2(status.errorMessage().contains(expected), qPrintable(status.errorMessage()));
    QVERIFY(!view.contiguousBytes().ok());

    QVERIFY(!Tensor().checkLayout().ok());
    Tensor ragged = Tensor::fromBytes(DType::Int32, QByteArray(7, '\0'), {1});
    QVERIFY(ragged.checkLayout().errorMessage().contains(u"not a whole number of int32"));
    Tensor grad = Tensor::zeros(DType::Int64, {2});
    grad.requiresGrad = true;
    QVERIFY(grad.checkLayout().errorMessage().contains(u"can require gradients, not int64"));
}

// --- Pickle bytes --------------------------------------------------------------------------------

void TestCheckpointWriter::picklesAsExpected_data()
{
    QTest::addColumn<Value>("value");
    QTest::addColumn<QByteArray>("pickle");
    // MARK + SETITEMS / APPENDS even for one element (libtorch's unpickler lacks SETITEM/APPEND).
    QTest::newRow("one item dict") << Value::dict({{"a", 1}})
                                   << PICKLE("\x80\x02}(X\x01\x00\x00\x00"
                                             "aK\x01u.");
    QTest::newRow("one element list") << Value::list({-1})
                                      << PICKLE("\x80\x02](J\xff\xff\xff\xff"
                                                "e.");
    QTest::newRow("ints") << Value::tuple(
        {255, 256, 65536, qint64(1) << 31, std::numeric_limits<qint64>::min()})
                          << PICKLE("\x80\x02(K\xffM\x00\x01J\x00\x00\x01\x00"
                                    "\x8a\x05\x00\x00\x00\x80\x00"
                                    "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80t.");
    QTest::newRow("float") << Value(-0.0) << PICKLE("\x80\x02G\x80\0\0\0\0\0\0\0.");
    QTest::newRow("bytes") << Value::bytes(QByteArray("\x00\xff", 2))
                           << PICKLE("\x80\x02"
                                     "c_codecs\nencode\nq\x00"
                                     "X\x03\x00\x00\x00\x00\xc3\xbf"
                                     "X\x06\x00\x00\x00"
                                     "latin1q\x01\x86R.");
    QTest::newRow("ordered dict") << Value::orderedDict()
                                  << PICKLE("\x80\x02"
                                            "ccollections\nOrderedDict\nq\x00)R.");
    QTest::newRow("device") << Value::device(u"cuda:1"_s)
                            << PICKLE("\x80\x02"
                                      "ctorch\ndevice\nq\x00"
                                      "X\x04\x00\x00\x00"
                                      "cudaK\x01\x86R.");
    QTest::newRow("size") << Value::size({2, 3})
                          << PICKLE("\x80\x02"
                                    "ctorch\nSize\nq\x00K\x02K\x03\x86\x85R.");
}

void TestCheckpointWriter::picklesAsExpected()
{
    QFETCH(Value, value);
    QFETCH(QByteArray, pickle);
    QVERIFY(write(u"tiny.pt"_s, value));
    const QByteArray file = readAll(path(u"tiny.pt"_s));
    // data.pkl is the first record; its data starts at 64, its size is in the local header.
    QVERIFY(file.size() > 64);
    const quint32 size = qFromLittleEndian<quint32>(file.constData() + 22);
    QCOMPARE(file.mid(64, size).toHex(' '), pickle.toHex(' '));
}

// --- Files loaded by torch -----------------------------------------------------------------------

void TestCheckpointWriter::everyDType()
{
    constexpr float fnan = std::bit_cast<float>(0x7fc00001u);
    constexpr double dnan = std::bit_cast<double>(0x7ff8000000000123ull);
    const auto i64 = std::numeric_limits<qint64>::min();
    const Value::Entries entries = {
        {"float32",
         Tensor::fromBytes(DType::Float32,
                           littleBytes<float>({1.0f, -0.0f, fnan, -INFINITY, 1e-45f,
                                               std::numeric_limits<float>::max(), -3.14159265f}),
                           {7})},
        {"float64",
         Tensor::fromBytes(DType::Float64,
                           littleBytes<double>({1.0, -0.0, dnan, -INFINITY, 5e-324,
                                                std::numeric_limits<double>::max()}),
                           {2, 3})},
        {"float16",
         Tensor::fromBytes(DType::Float16,
                           littleBytes<quint16>({0x3c00, 0x8000, 0x7e01, 0xfc00, 0x0001, 0x7bff}),
                           {6})},
        {"bfloat16",
         Tensor::fromBytes(DType::BFloat16,
                           littleBytes<quint16>({0x3f80, 0x8000, 0x7fc1, 0xff80, 0x0001, 0x7f7f}),
                           {3, 2})},
        {"int8", Tensor::fromBytes(DType::Int8, littleBytes<qint8>({-128, -1, 0, 1, 127}), {5})},
        {"int16",
         Tensor::fromBytes(DType::Int16, littleBytes<qint16>({-32768, -1, 0, 32767}), {4})},
        {"int32",
         Tensor::fromBytes(DType::Int32,
                           littleBytes<qint32>({std::numeric_limits<qint32>::min(), -1, 0,
                                                std::numeric_limits<qint32>::max()}),
                           {2, 2})},
        {"int64",
         Tensor::fromBytes(
             DType::Int64,
             littleBytes<qint64>({i64, -1, 0, std::numeric_limits<qint64>::max(), qint64(1) << 40}),
             {5})},
        {"uint8",
         Tensor::fromBytes(DType::UInt8,
                           [] {
                               QByteArray all(256, '\0');
                               for (int i = 0; i < 256; ++i)
                                   all[i] = char(i);
                               return all;
                           }(),
                           {16, 16})},
        {"bool", Tensor::fromBytes(DType::Bool, QByteArray("\0\1\1\0", 4), {4})},
        {"complex64",
         Tensor::fromBytes(DType::Complex64, littleBytes<float>({1.0f, -0.0f, fnan, INFINITY}),
                           {2})},
        {"complex128",
         Tensor::fromBytes(DType::Complex128, littleBytes<double>({1.5, -2.5, -0.0, dnan}), {2})},
    };
    const Value root = Value::orderedDict(entries);
    QVERIFY(write(u"dtypes.pt"_s, root));

    QJsonObject reports;
    QVERIFY(inspect({u"dtypes.pt"_s}, &reports));
    const QJsonObject report = reports[u"dtypes.pt"].toObject();
    QVERIFY(loadsAsWritten(u"dtypes.pt"_s, report, root));
    // Tensors and plain ints only: even torch 1.13's weights-only unpickler loads it.
    QVERIFY2(report[u"weights_only"][u"ok"].toBool(),
             qPrintable(report[u"weights_only"][u"error"].toString()));
    QVERIFY(report[u"weights_only"][u"same"].toBool());
    const QJsonArray globals = report[u"pickle"][u"globals"].toArray();
    for (const DType dtype : kAllDTypes)
        QVERIFY(globals.contains(QJsonValue(u"torch." + storageClassName(dtype))));
    QCOMPARE(report[u"zip"][u"names"].toArray().size(), 2 + 12 + 1);
}

void TestCheckpointWriter::scalarsEmptyAndShared()
{
    std::vector<float> values(24);
    for (int i = 0; i < 24; ++i)
        values[std::size_t(i)] = float(i) * 0.25f - 2.0f;
    const Tensor base = Tensor::fromFloats(values, {4, 6});
    Tensor tied = base; // the same storage under two names, as tied weights
    const Tensor other = Tensor::fromFloats(std::vector<float>{9, 8, 7}, {3});
    const Tensor emptyStorage = Tensor::fromBytes(DType::Int64, {}, {0});

    Value::Entries entries = {
        {"base", base},
        {"tied", tied},
        {"transposed", base.view(0, {6, 4}, {1, 6})},
        {"row 1", base.view(6, {6}, {1})},
        {"odd columns", base.view(1, {4, 3}, {6, 2})},
        {"broadcast", base.view(18, {3, 6}, {0, 1})},
        {"element", base.view(23, {}, {})},
        {"other", other},
        {"scalar", Tensor::fromFloats(std::vector<float>{2.5f}, {})},
        {"num_batches_tracked", Tensor::fromBytes(DType::Int64, littleBytes<qint64>({7}), {})},
        {"empty", emptyStorage},
        {"empty 2x0x3", Tensor::zeros(DType::Float16, {2, 0, 3})},
        {"empty view", base.view(5, {0}, {1})},
        {"parameter", other.asParameter()},
        {"frozen parameter", base.view(0, {24}, {1}).asParameter(false)},
        {"requires grad",
         [&] {
             Tensor t = Tensor::fromFloats(std::vector<float>{1, 2}, {2});
             t.requiresGrad = true;
             return Value(t);
         }()},
    };
    // Over 256 storages: memo indices beyond BINPUT's byte (LONG_BINPUT / LONG_BINGET).
    Value many = Value::list();
    QList<Tensor> manyTensors;
    for (int i = 0; i < 300; ++i) {
        manyTensors << Tensor::fromBytes(DType::Int32, littleBytes<qint32>({i, -i}), {2});
        many.append(manyTensors.last());
    }
    many.append(manyTensors[3]);
    many.append(manyTensors[299].view(1, {}, {}));
    entries.append({"many", many});
    entries.append({"base again", base.view(0, {2}, {1})});
    const Value root = Value::dict(entries);
    QVERIFY(write(u"shared.pt"_s, root));

    QJsonObject reports;
    QVERIFY(inspect({u"shared.pt"_s}, &reports));
    const QJsonObject report = reports[u"shared.pt"].toObject();
    // describe() numbers storages as torch.load's data pointers do: equal ids, shared memory.
    QVERIFY(loadsAsWritten(u"shared.pt"_s, report, root));
    const QJsonArray values2 = report[u"load"][u"values"].toArray();
    QCOMPARE(values2[0][u"storage"].toInt(), 0);
    QCOMPARE(values2[1][u"storage"].toInt(), 0);
    QCOMPARE(values2[5][u"storage"].toInt(), 0);
    QCOMPARE(values2[7][u"storage"].toInt(), 1);
    QCOMPARE(values2[13][u"type"].toString(), u"Parameter"_s);
    QCOMPARE(values2[13][u"storage"].toInt(), 1);
    QVERIFY(values2[13][u"requires_grad"].toBool());
    QVERIFY(!values2[14][u"requires_grad"].toBool());
    QVERIFY(values2[15][u"requires_grad"].toBool());
    // One record per storage: base, other, scalar, num_batches_tracked, empty, empty 2x0x3,
    // requires grad, and the 300.
    QCOMPARE(report[u"zip"][u"names"].toArray().size(), 2 + 7 + 300 + 1);
    QVERIFY(report[u"weights_only"][u"ok"].toBool());
    QVERIFY(report[u"weights_only"][u"same"].toBool());
}

void TestCheckpointWriter::plainValues()
{
    const double nan = std::bit_cast<double>(0x7ff8000000000123ull);
    Value deep = Value::list({"bottom"});
    for (int i = 0; i < 60; ++i)
        deep = i % 2 ? Value::list({deep}) : Value::dict({{i, deep}});
    QByteArray everyByte(256, '\0');
    for (int i = 0; i < 256; ++i)
        everyByte[i] = char(i);
    QList<Value> dtypes;
    for (const DType dtype : kAllDTypes)
        dtypes << Value::dtype(dtype);
    const Tensor weight = Tensor::fromFloats(std::vector<float>{1, -1}, {2});
    const Value metadata
        = Value::dict({{"_metadata", Value::orderedDict({{"", Value::dict({{"version", 1}})}})}});

    const Value root = Value::dict({
        {"none", nullptr},
        {"true", true},
        {"false", false},
        {"ints",
         Value::list({0,
                      1,
                      255,
                      256,
                      65535,
                      65536,
                      -1,
                      -128,
                      -129,
                      -32768,
                      -32769,
                      2147483647,
                      qint64(2147483648LL),
                      -2147483648LL,
                      -2147483649LL,
                      std::numeric_limits<qint64>::max(),
                      std::numeric_limits<qint64>::min(),
                      qint64(1) << 40,
                      -(qint64(1) << 40),
                      4294967295LL,
                      4294967296LL})},
        {"floats",
         Value::list({0.0, -0.0, 1.5, -2.25, nan, -INFINITY, INFINITY, 5e-324, 1e300,
                      std::numeric_limits<double>::max(), 0.1})},
        {"strings",
         Value::list({"", "ascii", "Grüße", "日本語のテキスト", "🙂 emoji", "tab\tnew\nline",
                      QString(QString(QChar(0)) + u"after NUL"), "quote \" and \\",
                      QString(70000, u'x')})},
        {"bytes", Value::list({Value::bytes({}), Value::bytes(everyByte)})},
        {"tuples",
         Value::list({Value::tuple(), Value::tuple({1}), Value::tuple({1, "b"}),
                      Value::tuple({1, 2, 3}), Value::tuple({1, 2, 3, 4}),
                      Value::tuple({Value::tuple({Value::tuple()})})})},
        {"one item dict", Value::dict({{"only", 1}})},
        {"one element list", Value::list({42})},
        {"empty", Value::list({Value::dict(), Value::list(), Value::orderedDict()})},
        {"int keys",
         Value::dict({{0, "zero"},
                      {7, "seven"},
                      {-3, "minus three"},
                      {std::numeric_limits<qint64>::max(), "big"}})},
        {"mixed keys",
         Value::dict({{"s", 1},
                      {2, 2},
                      {nullptr, 3},
                      {Value::tuple({1, "a"}), 4},
                      {1.5, 5},
                      {false, 6},
                      {Value::bytes("k"), 7}})},
        {"ordered", Value::orderedDict({{"b", 1}, {"a", 2}, {"c", 3}, {"10", 4}, {"9", 5}})},
        {"with metadata", Value::orderedDict({{"weight", weight}}, metadata)},
        {"deep", deep},
        {"sizes", Value::list({Value::size({2, 3, 4}), Value::size({}), Value::size({0})})},
        {"devices",
         Value::list({Value::device(u"cpu"_s), Value::device(u"cuda"_s), Value::device(u"cuda:0"_s),
                      Value::device(u"cuda:3"_s)})},
        {"dtypes", Value::list(dtypes)},
        {"optimizer",
         Value::dict({
             {"state",
              Value::dict({{0,
                            Value::dict({{"step", Tensor::fromFloats(std::vector<float>{3}, {})},
                                         {"exp_avg", weight}})}})},
             {"param_groups",
              Value::list({Value::dict({{"lr", 0.001},
                                        {"betas", Value::tuple({0.9, 0.999})},
                                        {"amsgrad", false},
                                        {"params", Value::list({0})}})})},
         })},
    });
    QVERIFY(write(u"plain.pt"_s, root));
    // Not a dict at the root, as torch.save allows.
    const Value bare = Value::list({1, "two", 3.0});
    QVERIFY(write(u"bare.pt"_s, bare));

    QJsonObject reports;
    QVERIFY(inspect({u"plain.pt"_s, u"bare.pt"_s}, &reports));
    QVERIFY(loadsAsWritten(u"plain.pt"_s, reports[u"plain.pt"].toObject(), root));
    QVERIFY(loadsAsWritten(u"bare.pt"_s, reports[u"bare.pt"].toObject(), bare));
    const QJsonArray globals = reports[u"plain.pt"][u"pickle"][u"globals"].toArray();
    QVERIFY(globals.contains(QJsonValue(u"_codecs.encode"_s)));
    QVERIFY(globals.contains(QJsonValue(u"torch.device"_s)));
    QVERIFY(globals.contains(QJsonValue(u"torch.bfloat16"_s)));
    QVERIFY(globals.contains(QJsonValue(u"torch.Size"_s)));
}

void TestCheckpointWriter::weightsOnlyOnThisTorch()
{
    // What torch 1.13's weights-only unpickler accepts: tensors, ints, str, bool, None, containers,
    // torch.Size and the dtypes it lists. A typical checkpoint without floats loads there.
    const Tensor weight = Tensor::fromFloats(std::vector<float>{0.5f, -0.5f, 2, 4}, {2, 2});
    const Value metadata
        = Value::dict({{"_metadata", Value::orderedDict({{"", Value::dict({{"version", 1}})}})}});
    const Value root = Value::dict({
        {"epoch", 12},
        {"arch", "resnet18"},
        {"classes", Value::list({"cat", "dog"})},
        {"one", Value::list({1})},
        {"model",
         Value::orderedDict({{"fc.weight", weight}, {"fc.bias", weight.view(0, {2}, {1})}},
                            metadata)},
        {"optimizer",
         Value::dict({{"state", Value::dict({{0, Value::dict({{"momentum_buffer", weight}})}})}})},
        {"shape", Value::size({3, 224, 224})},
        {"dtype", Value::dtype(DType::Float16)},
        {"best", nullptr},
        {"done", true},
    });
    QVERIFY(write(u"typical.pt"_s, root));
    QJsonObject reports;
    QVERIFY(inspect({u"typical.pt"_s}, &reports));
    const QJsonObject report = reports[u"typical.pt"].toObject();
    QVERIFY(loadsAsWritten(u"typical.pt"_s, report, root));
    QVERIFY2(report[u"weights_only"][u"ok"].toBool(),
             qPrintable(report[u"weights_only"][u"error"].toString()));
    QVERIFY(report[u"weights_only"][u"same"].toBool());
}

void TestCheckpointWriter::deviceTags()
{
    const Tensor a = Tensor::fromFloats(std::vector<float>{1, 2, 3, 4}, {4});
    const Tensor b = Tensor::fromBytes(DType::Int64, littleBytes<qint64>({5}), {});
    const Value root = Value::orderedDict({{"a", a}, {"a view", a.view(1, {2}, {1})}, {"b", b}});
    WriteOptions toGpu;
    toGpu.device = u"cuda:0"_s;
    QVERIFY(write(u"gpu.pt"_s, root, toGpu));

    // Without the option each storage keeps its own tag.
    Tensor c = Tensor::fromFloats(std::vector<float>{1}, {1});
    c.storage->device = u"cuda:1"_s;
    const Value mixed = Value::list({c, b});
    QVERIFY(write(u"mixed.pt"_s, mixed));
    WriteOptions toCpu;
    toCpu.device = u"cpu"_s;
    QVERIFY(write(u"cpu.pt"_s, mixed, toCpu));

    QJsonObject reports;
    QVERIFY(inspect({u"gpu.pt"_s, u"mixed.pt"_s, u"cpu.pt"_s}, &reports));
    const QJsonObject gpu = reports[u"gpu.pt"].toObject();
    // With map_location='cpu' it loads; the storages were tagged cuda:0 (one call per storage).
    QVERIFY(loadsAsWritten(u"gpu.pt"_s, gpu, root));
    QCOMPARE(gpu[u"locations"].toArray(), QJsonArray({u"cuda:0"_s, u"cuda:0"_s}));
    QVERIFY(gpu[u"weights_only"][u"ok"].toBool());
    if (gpu[u"cuda"].toBool()) {
        QVERIFY(gpu[u"plain"][u"ok"].toBool()); // loaded onto the GPU
    } else {
        QVERIFY(!gpu[u"plain"][u"ok"].toBool());
        QVERIFY2(gpu[u"plain"][u"error"].toString().contains(u"CUDA"),
                 qPrintable(gpu[u"plain"][u"error"].toString()));
    }
    QVERIFY(loadsAsWritten(u"mixed.pt"_s, reports[u"mixed.pt"].toObject(), mixed));
    QCOMPARE(reports[u"mixed.pt"][u"locations"].toArray(), QJsonArray({u"cuda:1"_s, u"cpu"_s}));
    QVERIFY(loadsAsWritten(u"cpu.pt"_s, reports[u"cpu.pt"].toObject(), mixed));
    QCOMPARE(reports[u"cpu.pt"][u"locations"].toArray(), QJsonArray({u"cpu"_s, u"cpu"_s}));
    QVERIFY(reports[u"cpu.pt"][u"plain"][u"ok"].toBool());
    QVERIFY(reports[u"cpu.pt"][u"plain"][u"same"].toBool());
}

void TestCheckpointWriter::loadsIntoModules()
{
    // nn.Linear(4, 3) from Parameters, as a model's named_parameters() would give them.
    std::vector<float> w(12);
    for (std::size_t i = 0; i < w.size(); ++i)
        w[i] = float(i) / 8 - 0.7f;
    const std::vector<float> bias = {0.1f, -0.2f, 0.3f};
    const Value linear = Value::orderedDict({
        {"weight", Tensor::fromFloats(w, {3, 4}).asParameter()},
        {"bias", Tensor::fromFloats(bias, {3}).asParameter()},
    });
    QVERIFY(write(u"linear.pt"_s, linear));

    // Linear(4, 8), ReLU, Linear(8, 2), BatchNorm1d(2): plain tensors, as state_dict() gives.
    const auto ramp = [](int count, float scale, float shift) {
        std::vector<float> v;
        v.resize(std::size_t(count));
        for (int i = 0; i < count; ++i)
            v[std::size_t(i)] = std::sin(float(i) * scale) + shift;
        return v;
    };
    const std::vector<float> w0 = ramp(32, 0.7f, 0), b0 = ramp(8, 1.3f, 0.1f);
    const std::vector<float> w2 = ramp(16, 0.3f, -0.1f), b2 = ramp(2, 2.1f, 0);
    const std::vector<float> gamma = {1.5f, 0.5f}, beta = {0.25f, -0.25f};
    const std::vector<float> mean = {0.1f, -0.3f}, var = {2.0f, 0.5f};
    const Value sequential = Value::orderedDict({
        {"0.weight", Tensor::fromFloats(w0, {8, 4})},
        {"0.bias", Tensor::fromFloats(b0, {8})},
        {"2.weight", Tensor::fromFloats(w2, {2, 8})},
        {"2.bias", Tensor::fromFloats(b2, {2})},
        {"3.weight", Tensor::fromFloats(gamma, {2})},
        {"3.bias", Tensor::fromFloats(beta, {2})},
        {"3.running_mean", Tensor::fromFloats(mean, {2})},
        {"3.running_var", Tensor::fromFloats(var, {2})},
        {"3.num_batches_tracked", Tensor::fromBytes(DType::Int64, littleBytes<qint64>({42}), {})},
    });
    QVERIFY(write(u"sequential.pt"_s, sequential));
    // A missing key must fail strict loading: the oracle really checks.
    QVERIFY(write(u"incomplete.pt"_s, Value::orderedDict({linear.entries().first()})));

    const auto run = [&](const QString &file, const QString &kind) {
        const test::ProcessResult result
            = test::runOracle(u"checkpointwriter_oracle.py"_s, {u"module"_s, path(file), kind});
        if (result.exitCode != 0)
            qWarning().noquote() << result.err.right(3000);
        return QJsonDocument::fromJson(result.out).object();
    };
    const auto x = [](int row, int column) {
        return double(row * 4 + column) / 4;
    };

    const QJsonObject l = run(u"linear.pt"_s, u"linear"_s);
    QVERIFY2(l[u"ok"].toBool(), qPrintable(l[u"error"].toString()));
    QJsonArray output = l[u"output"].toArray();
    QCOMPARE(output.size(), 6);
    for (int r = 0; r < 2; ++r) {
        for (int i = 0; i < 3; ++i) {
            double y = bias[std::size_t(i)];
            for (int j = 0; j < 4; ++j)
                y += double(w[std::size_t(i * 4 + j)]) * x(r, j);
            QVERIFY(std::abs(output[r * 3 + i].toDouble() - y) < 1e-5);
        }
    }

    const QJsonObject s = run(u"sequential.pt"_s, u"sequential"_s);
    QVERIFY2(s[u"ok"].toBool(), qPrintable(s[u"error"].toString()));
    QCOMPARE(firstDifference(s[u"params"], describe(sequential)), QString());
    output = s[u"output"].toArray();
    QCOMPARE(output.size(), 4);
    for (int r = 0; r < 2; ++r) {
        double hidden[8];
        for (int i = 0; i < 8; ++i) {
            double h = b0[std::size_t(i)];
            for (int j = 0; j < 4; ++j)
                h += double(w0[std::size_t(i * 4 + j)]) * x(r, j);
            hidden[i] = std::max(h, 0.0);
        }
        for (int i = 0; i < 2; ++i) {
            double z = b2[std::size_t(i)];
            for (int j = 0; j < 8; ++j)
                z += double(w2[std::size_t(i * 8 + j)]) * hidden[j];
            const auto c = std::size_t(i);
            const double y = (z - mean[c]) / std::sqrt(double(var[c]) + 1e-5) * gamma[c] + beta[c];
            const double actual = output[r * 2 + i].toDouble();
            QVERIFY2(std::abs(actual - y) < 1e-4,
                     qPrintable(QStringLiteral("%1 vs %2").arg(actual).arg(y)));
        }
    }

    const QJsonObject incomplete = run(u"incomplete.pt"_s, u"linear"_s);
    QVERIFY(!incomplete[u"ok"].toBool());
    QVERIFY(incomplete[u"error"].toString().contains(u"Missing key"));
}

void TestCheckpointWriter::zipLayout()
{
    const Tensor t = Tensor::fromFloats(std::vector<float>{1, 2, 3}, {3});
    const Value root = Value::dict({{"t", t}, {"u", Tensor::zeros(DType::UInt8, {5})}});
    QVERIFY(write(u"default.pt"_s, root));
    WriteOptions stem;
    stem.archiveName.clear();
    QVERIFY(write(u"my.model.pt"_s, root, stem));
    WriteOptions named;
    named.archiveName = u"weights"_s;
    QVERIFY(write(u"named.pt"_s, root, named));
    WriteOptions zip64;
    zip64.forceZip64 = true;
    QVERIFY(write(u"zip64.pt"_s, root, zip64));

    QJsonObject reports;
    QVERIFY(inspect({u"default.pt"_s, u"my.model.pt"_s, u"named.pt"_s, u"zip64.pt"_s}, &reports));
    const auto names = [](const QString &folder) {
        return QJsonArray({QString(folder + u"/data.pkl"), QString(folder + u"/byteorder"),
                           QString(folder + u"/data/0"), QString(folder + u"/data/1"),
                           QString(folder + u"/version")});
    };
    QCOMPARE(reports[u"default.pt"][u"zip"][u"names"].toArray(), names(u"archive"_s));
    QCOMPARE(reports[u"my.model.pt"][u"zip"][u"names"].toArray(), names(u"my"_s));
    QCOMPARE(reports[u"named.pt"][u"zip"][u"names"].toArray(), names(u"weights"_s));
    QCOMPARE(reports[u"zip64.pt"][u"zip"][u"names"].toArray(), names(u"archive"_s));
    QVERIFY(!reports[u"default.pt"][u"zip"][u"zip64"].toBool());
    QVERIFY(reports[u"zip64.pt"][u"zip"][u"zip64"].toBool());
    for (const QString &file : reports.keys())
        QVERIFY(loadsAsWritten(file, reports[file].toObject(), root));

    // Python's zipfile agrees on every CRC (testzip above); the data really is 64-byte aligned.
    const QByteArray bytes = readAll(path(u"default.pt"_s));
    QCOMPARE(bytes.left(4), QByteArray("PK\x03\x04"));
    const qsizetype data0 = bytes.indexOf(QByteArray("archive/data/0"));
    QVERIFY(data0 > 0);
    const quint16 extra = qFromLittleEndian<quint16>(bytes.constData() + data0 - 2);
    QCOMPARE((data0 + 14 + extra) % 64, 0);
    QCOMPARE(bytes.mid(data0 + 14 + extra, 12), littleBytes<float>({1, 2, 3}));
}

void TestCheckpointWriter::largeTensor()
{
    // ~50 MB of float32 that no pattern-blind writer gets right by accident.
    const qint64 count = 50LL * 1000 * 1000 / 4;
    QByteArray bytes(count * 4, Qt::Uninitialized);
    quint32 state = 12345;
    auto *words = reinterpret_cast<quint32 *>(bytes.data());
    for (qint64 i = 0; i < count; ++i) {
        state = state * 1664525u + 1013904223u;
        words[i] = qToLittleEndian(state);
    }
    const Tensor big = Tensor::fromBytes(DType::Float32, bytes, {count / 1000, 1000});
    const Value root
        = Value::orderedDict({{"big", big}, {"column", big.view(7, {count / 1000}, {1000})}});

    QElapsedTimer timer;
    timer.start();
    QVERIFY(write(u"big.pt"_s, root));
    qInfo("wrote %lld MB in %lld ms", qint64(bytes.size()) / 1000000, timer.elapsed());
    QVERIFY(QFileInfo(path(u"big.pt"_s)).size() > bytes.size());

    QJsonObject reports;
    QVERIFY(inspect({u"big.pt"_s}, &reports));
    QVERIFY(loadsAsWritten(u"big.pt"_s, reports[u"big.pt"].toObject(), root));
}

void TestCheckpointWriter::deterministic()
{
    const Tensor t = Tensor::fromFloats(std::vector<float>{1, 2}, {2});
    const Value root = Value::dict({{"t", t}, {"x", 1.5}});
    QVERIFY(write(u"a.pt"_s, root));
    QVERIFY(write(u"b.pt"_s, root));
    QCOMPARE(readAll(path(u"a.pt"_s)), readAll(path(u"b.pt"_s)));
    // Overwriting an existing file replaces it completely.
    QVERIFY(write(u"a.pt"_s, Value::list({1})));
    QVERIFY(readAll(path(u"a.pt"_s)).size() < readAll(path(u"b.pt"_s)).size());
    // Without waiting for the disk: the same bytes, over an existing file, no temporary left.
    WriteOptions quick;
    quick.durable = false;
    QVERIFY(writeCheckpoint(path(u"a.pt"_s), root, quick).ok());
    QCOMPARE(readAll(path(u"a.pt"_s)), readAll(path(u"b.pt"_s)));
    QCOMPARE(QDir(m_dir->path()).entryList({u"*.part-*"_s}, QDir::Files | QDir::Hidden),
             QStringList());
}

// --- Refusals ------------------------------------------------------------------------------------

void TestCheckpointWriter::unwritableDestination_data()
{
    QTest::addColumn<QString>("target");
    QTest::addColumn<QString>("reason");
    QTest::newRow("missing folder") << u"no/such/folder/x.pt"_s << QString();
    QTest::newRow("parent is a file") << u"file.txt/x.pt"_s << QString();
    QTest::newRow("destination is a folder") << u"folder"_s << QString();
}

void TestCheckpointWriter::unwritableDestination()
{
    QFETCH(QString, target);
    QVERIFY(test::writeFile(path(u"file.txt"_s), "text"));
    QVERIFY(QDir(m_dir->path()).mkdir(u"folder"_s));
    const QStringList before
        = QDir(m_dir->path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden);

    WriteOptions quick;
    quick.durable = false;
    // The quick mode (own temporary file + rename) leaves nothing behind either.
    QVERIFY(!writeCheckpoint(path(target), Value::dict({{"a", 1}}), quick).ok());
    QCOMPARE(QDir(m_dir->path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden),
             before);
    const Status status = writeCheckpoint(path(target), Value::dict({{"a", 1}}));
    QVERIFY(!status.ok());
    QVERIFY2(status.errorMessage().startsWith(u"Cannot write checkpoint “" + path(target) + u"”: "),
             qPrintable(status.errorMessage()));
    QVERIFY(status.errorMessage().size()
            > QStringLiteral("Cannot write checkpoint “”: ").size() + path(target).size());
    // Nothing left behind: no partial file, no temporary file.
    QCOMPARE(QDir(m_dir->path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden),
             before);
    QVERIFY(QFileInfo(path(u"folder"_s)).isDir());
    QVERIFY(QDir(path(u"folder"_s)).isEmpty());
}

void TestCheckpointWriter::refusedValues_data()
{
    QTest::addColumn<Value>("value");
    QTest::addColumn<WriteOptions>("options");
    QTest::addColumn<QString>("expected");
    const Tensor t = Tensor::fromFloats(std::vector<float>{1, 2, 3, 4, 5}, {5});
    Tensor wrongDevice = Tensor::fromFloats(std::vector<float>{1}, {1});
    wrongDevice.storage->device = u"CUDA 0"_s;
    WriteOptions badDevice;
    badDevice.device = u"gpu:first"_s;
    WriteOptions badArchive;
    badArchive.archiveName = u"a/b"_s;

    QTest::newRow("object")
        << Value::dict({{"args", Value::object(u"argparse"_s, u"Namespace"_s, Value::tuple())}})
        << WriteOptions()
        << u"root[\"args\"]: an object of class argparse.Namespace cannot be written"_s;
    QTest::newRow("storage too small")
        << Value::dict({{"model", Value::orderedDict({{"fc.weight", t.view(0, {2, 3}, {3, 1})}})}})
        << WriteOptions()
        << u"root[\"model\"][\"fc.weight\"]: its storage holds 5 float32 elements, the view [2, 3] "
           "with stride [3, 1] at offset 0 needs 6"_s;
    QTest::newRow("no storage") << Value::list({1, Tensor()}) << WriteOptions()
                                << u"root[1]: the tensor has no storage"_s;
    QTest::newRow("list key") << Value::dict({{Value::list({1}), 1}}) << WriteOptions()
                              << u"a list cannot be a dict key"_s;
    QTest::newRow("list in tuple key") << Value::dict({{Value::tuple({1, Value::dict()}), 1}})
                                       << WriteOptions() << u"a tuple cannot be a dict key"_s;
    QTest::newRow("duplicate key") << Value::orderedDict({{"a", 1}, {"a", 2}}) << WriteOptions()
                                   << u"root[\"a\"]: the key appears twice"_s;
    QTest::newRow("1 and True") << Value::dict({{1, 1}, {true, 2}}) << WriteOptions()
                                << u"root[True]: the key appears twice"_s;
    QTest::newRow("device value") << Value::device(u"cuda:"_s) << WriteOptions()
                                  << u"root: “cuda:” is not a device"_s;
    QTest::newRow("storage device") << Value::tuple({wrongDevice}) << WriteOptions()
                                    << u"root[0]: its storage's device “CUDA 0”"_s;
    QTest::newRow("device option") << Value(1) << badDevice << u"“gpu:first” is not a device"_s;
    QTest::newRow("archive name") << Value(1) << badArchive << u"“a/b” cannot name the archive"_s;
    QTest::newRow("metadata not a dict")
        << Value::orderedDict({}, Value::list()) << WriteOptions()
        << u"root.__dict__: an OrderedDict's attributes must be a dict"_s;
    Value deep = Value::list();
    for (int i = 0; i < 1100; ++i)
        deep = Value::list({deep});
    QTest::newRow("too deep") << deep << WriteOptions() << u"nested deeper than 1000 levels"_s;
}

void TestCheckpointWriter::refusedValues()
{
    QFETCH(Value, value);
    QFETCH(WriteOptions, options);
    QFETCH(QString, expected);
    const Status status = writeCheckpoint(path(u"refused.pt"_s), value, options);
    QVERIFY(!status.ok());
    QVERIFY2(status.errorMessage().startsWith(u"Cannot write checkpoint “" + path(u"refused.pt"_s)),
             qPrintable(status.errorMessage()));
    QVERIFY2(status.errorMessage().contains(expected), qPrintable(status.errorMessage()));
    QVERIFY(!QFileInfo::exists(path(u"refused.pt"_s)));
    QCOMPARE(QDir(m_dir->path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden),
             QStringList());
}

void TestCheckpointWriter::refusalLeavesExistingFile()
{
    QVERIFY(write(u"keep.pt"_s, Value::dict({{"epoch", 1}})));
    const QByteArray before = readAll(path(u"keep.pt"_s));
    const Status status
        = writeCheckpoint(path(u"keep.pt"_s), Value::dict({{"x", Value::object(u"a"_s, u"B"_s)}}));
    QVERIFY(!status.ok());
    QCOMPARE(readAll(path(u"keep.pt"_s)), before);
}

QTEST_GUILESS_MAIN(TestCheckpointWriter)
#include "tst_checkpointwriter.moc"
