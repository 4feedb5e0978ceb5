// Checkpoint repair: finding state dicts, key and tensor operations, the load report, the
// automatic proposal and the diff. Oracles (tools/checkpointrepair_oracle.py, torch 1.13 and
// torchvision 0.14 on our machines): torchvision's resnet18 state dict keys, shapes and _metadata
// (plain and DataParallel), torch.load + load_state_dict(strict=True) of repaired files written by
// writeCheckpoint(), Tensor.to(dtype) bit for bit, fnmatch.fnmatchcase and re.sub.
#include "checkpoint/checkpointrepair.h"
#include "checkpoint/checkpointvalue.h"
#include "checkpoint/checkpointwriter.h"

#include "testutil.h"

#include <QFile>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLocale>
#include <QSet>
#include <QTemporaryDir>
#include <QTest>
#include <QtEndian>

#include <bit>
#include <cmath>
#include <limits>

using namespace ifs;
using namespace ifs::ckpt;
using namespace Qt::StringLiterals;

Q_DECLARE_METATYPE(ifs::ckpt::DType)
Q_DECLARE_METATYPE(ifs::ckpt::Value)
Q_DECLARE_METATYPE(ifs::ckpt::Operation)
Q_DECLARE_METATYPE(QList<ifs::ckpt::Operation>)

namespace {

/// A model's keys as the oracle reports them.
struct ModelKeys
{
    TargetSpec spec;
    QList<std::pair<QString, qint64>> metadata;
};

QJsonDocument runOracleJson(const QStringList &args)
{
    const test::ProcessResult run = test::runOracle(u"checkpointrepair_oracle.py"_s, args);
    const QJsonDocument document = QJsonDocument::fromJson(run.out);
    if (run.exitCode != 0 || document.isNull())
        qWarning().noquote() << "oracle" << args << "failed:" << run.err.right(3000);
    return document;
}

QList<std::pair<QString, qint64>> metadataFromJson(const QJsonValue &json)
{
    QList<std::pair<QString, qint64>> out;
    for (const QJsonValue &item : json.toArray())
        out.append({item[0].toString(), item[1].toInteger()});
    return out;
}

/// resnet18's state dict keys (torchvision), cached per variant.
const ModelKeys &resnet18Keys(int numClasses = 1000, bool dataParallel = false)
{
    static QHash<QString, ModelKeys> cache;
    const QString id = QString::number(numClasses) + (dataParallel ? u"dp"_s : u""_s);
    if (!cache.contains(id)) {
        const QJsonDocument doc
            = runOracleJson({u"keys"_s, u"--num-classes"_s, QString::number(numClasses),
                             u"--wrap"_s, dataParallel ? u"dp"_s : u"none"_s});
        ModelKeys keys;
        for (const QJsonValue &item : doc[u"keys"_s].toArray()) {
            KeySpec spec;
            spec.key = item[0].toString();
            for (const QJsonValue &s : item[1].toArray())
                spec.shape.append(s.toInteger());
            spec.dtype = dtypeFromName(item[2].toString()).value_or(DType::Float32);
            keys.spec.append(spec);
        }
        keys.metadata = metadataFromJson(doc[u"metadata"_s]);
        cache.insert(id, keys);
    }
    return cache[id];
}

Value metadataValue(const QList<std::pair<QString, qint64>> &metadata)
{
    Value::Entries entries;
    for (const auto &[name, version] : metadata)
        entries.append({Value(name), Value::dict({{"version", version}})});
    return Value::orderedDict(entries);
}

/// A state dict of zeros with the model's keys, shapes, dtypes and (optionally) _metadata.
Value stateDictOf(const ModelKeys &keys, bool withMetadata = true)
{
    Value::Entries entries;
    for (const KeySpec &spec : keys.spec) {
        Tensor t = Tensor::zeros(spec.dtype, spec.shape);
        if (isFloatingPoint(spec.dtype) && !spec.key.contains(u"running_"))
            t = t.asParameter(true);
        entries.append({Value(spec.key), Value(t)});
    }
    if (!withMetadata)
        return Value::orderedDict(entries);
    return Value::orderedDict(entries, Value::dict({{"_metadata", metadataValue(keys.metadata)}}));
}

QList<std::pair<QString, qint64>> metadataOf(const Value &dict)
{
    QList<std::pair<QString, qint64>> out;
    const Value metadata = dict.state().value(u"_metadata");
    for (const Value::Entry &entry : metadata.entries())
        out.append({entry.first.toString(), entry.second.value(u"version").toInt()});
    return out;
}

QStringList keysOf(const Value &dict)
{
    QStringList keys;
    for (const Value::Entry &entry : dict.entries())
        keys.append(entry.first.toString());
    return keys;
}

QStringList specKeys(const TargetSpec &spec)
{
    QStringList keys;
    for (const KeySpec &s : spec)
        keys.append(s.key);
    return keys;
}

Tensor floats(std::initializer_list<float> values, QList<qint64> shape = {})
{
    const std::vector<float> v(values);
    if (shape.isEmpty())
        shape = {qint64(v.size())};
    return Tensor::fromFloats(std::span<const float>(v.data(), v.size()), shape);
}

Tensor zerosOf(QList<qint64> shape, DType dtype = DType::Float32)
{
    return Tensor::zeros(dtype, shape);
}

QString opsText(const QList<Operation> &ops)
{
    QStringList parts;
    for (const Operation &op : ops)
        parts.append(describe(op));
    return u"["_s + parts.join(u"; "_s) + u"]"_s;
}

/// Every storage a value holds (for "nothing lost" checks).
QList<const Storage *> storagesOf(const Value &value)
{
    QList<const Storage *> out;
    if (value.isTensor())
        out.append(value.toTensor().storage.get());
    for (const Value &item : value.items())
        out += storagesOf(item);
    for (const Value::Entry &entry : value.entries())
        out += storagesOf(entry.second);
    return out;
}

int tensorCount(const Value &dict)
{
    int n = 0;
    for (const Value::Entry &entry : dict.entries())
        n += entry.second.isTensor() ? 1 : 0;
    return n;
}

template<typename T>
QByteArray littleBytes(const QList<T> &values)
{
    QByteArray bytes(values.size() * qsizetype(sizeof(T)), Qt::Uninitialized);
    for (qsizetype i = 0; i < values.size(); ++i)
        qToLittleEndian<T>(values[i], bytes.data() + i * sizeof(T));
    return bytes;
}

/// A fixed pseudo-random sequence (so failures reproduce).
struct Lcg
{
    quint64 state = 0x9E3779B97F4A7C15ull;
    quint64 next()
    {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return state ^ (state >> 29);
    }
};

/// The casts compared with torch.
QList<std::pair<DType, DType>> castPairs()
{
    return {
        {DType::Float32, DType::Float16},  {DType::Float32, DType::BFloat16},
        {DType::Float32, DType::Float64},  {DType::Float64, DType::Float32},
        {DType::Float64, DType::Float16},  {DType::Float64, DType::BFloat16},
        {DType::Float16, DType::Float32},  {DType::BFloat16, DType::Float32},
        {DType::Float16, DType::BFloat16}, {DType::BFloat16, DType::Float16},
        {DType::Float16, DType::Float64},  {DType::BFloat16, DType::Float64},
    };
}

/// Inputs for the casts: every bit pattern of the 16-bit types; for float32 and float64 the
/// tricky values (overflow, NaN payloads, subnormals, ties) and pseudo-random ones.
QByteArray castInput(DType from)
{
    Lcg lcg;
    QByteArray input;
    if (from == DType::Float16 || from == DType::BFloat16) {
        QList<quint16> all; // every bit pattern
        for (int i = 0; i < 65536; ++i)
            all.append(quint16(i));
        input = littleBytes(all);
    } else if (from == DType::Float32) {
        const auto f = [](float x) {
            return std::bit_cast<quint32>(x);
        };
        QList<quint32> bits = {
            0x00000000u,
            0x80000000u,
            f(1.0f),
            f(-1.0f),
            f(65504.0f),
            0x477FEFFFu,
            0x477FF000u,
            0x477FF001u,
            f(65536.0f),
            0x7F7FFFFFu,
            0xFF7FFFFFu,
            0x7F800000u,
            0xFF800000u,
            // NaNs: quiet, signalling, negative, payloads.
            0x7FC00000u,
            0x7F800001u,
            0xFFC00001u,
            0x7FFFFFFFu,
            0xFF800001u,
            0x7FA00000u,
            0x7FC02000u,
            0xFFFFFFFFu,
            0x7F802000u,
            // float16 subnormals and the rounding at their bottom.
            f(std::ldexp(1.0f, -24)),
            f(std::ldexp(1.0f, -25)),
            0x33000001u,
            f(std::ldexp(1.5f, -24)),
            f(std::ldexp(2.5f, -24)),
            f(std::ldexp(3.5f, -24)),
            f(std::ldexp(1023.0f, -24)),
            f(std::ldexp(1023.5f, -24)),
            f(std::ldexp(1.0f, -14)),
            0x387FFFFFu,
            0x38800001u,
            f(-std::ldexp(1.0f, -24)),
            f(std::ldexp(1.0f, -26)),
            // Ties in the normal range, float16 and bfloat16.
            f(1.0f + std::ldexp(1.0f, -11)),
            f(1.0f + std::ldexp(3.0f, -11)),
            f(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -23)),
            f(1.0f + std::ldexp(1.0f, -8)),
            f(1.0f + std::ldexp(3.0f, -8)),
            f(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)),
            0x7F7F8000u,
            0x7F7F7FFFu,
            0x7F7EFFFFu,
            0x3F808000u,
            0x3F818000u,
            // float32 subnormals.
            0x00000001u,
            0x007FFFFFu,
            0x80400000u,
            0x00008000u,
            0x00018000u,
        };
        for (int i = 0; i < 4000; ++i)
            bits.append(quint32(lcg.next()));
        for (int i = 0; i < 2000; ++i) { // moderate magnitudes, where models live
            const float x
                = std::ldexp(float(lcg.next() % 16777216) / 16777216.0f, int(lcg.next() % 60) - 40);
            bits.append(f(lcg.next() % 2 ? x : -x));
        }
        input = littleBytes(bits);
    } else {
        const auto d = [](double x) {
            return std::bit_cast<quint64>(x);
        };
        QList<quint64> bits = {
            0,
            0x8000000000000000ull,
            d(1.0),
            d(65504.0),
            d(65519.99999999),
            d(65520.0),
            d(1e39),
            d(-1e39),
            d(3.4028235677973366e38),
            d(3.4028234663852886e38),
            0x7FF0000000000000ull,
            0xFFF0000000000000ull,
            0x7FF8000000000000ull,
            0x7FF0000000000001ull,
            0xFFF8000000000001ull,
            0x7FFFFFFFFFFFFFFFull,
            0x7FF4000000000000ull,
            0x0000000000000001ull,
            d(std::ldexp(1.0, -149)),
            d(std::ldexp(1.0, -150)),
            d(std::ldexp(1.5, -150)),
            d(std::ldexp(1.0, -25)),
            // Rounded twice (through float32) as torch does: 1 + 2^-11 + 2^-40 → 1.
            d(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40)),
            d(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40)),
            d(1.0 + std::ldexp(1.0, -24) + std::ldexp(1.0, -60)),
        };
        for (int i = 0; i < 3000; ++i)
            bits.append(lcg.next());
        for (int i = 0; i < 3000; ++i) {
            const double x = std::ldexp(double(lcg.next() >> 11) / 9007199254740992.0,
                                        int(lcg.next() % 80) - 50);
            bits.append(d(lcg.next() % 2 ? x : -x));
        }
        input = littleBytes(bits);
    }

    return input;
}

} // namespace

class TestCheckpointRepair : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void findsStateDicts();
    void valueAtErrors();
    void dataParallelStripLoadsIntoResnet18();
    void addPrefixFollowsMetadata();
    void lightningExtractAndStrip();
    void stackedCompilePrefix();
    void stripOnlyKeysWithThePrefix();
    void headReplaced();
    void renameCollisionsRefused_data();
    void renameCollisionsRefused();
    void renameSwapAndAbsentKeys();
    void regexRenameLikePython();
    void regexRenameDropsMetadata();
    void regexErrors();
    void dropKeysLikeFnmatch();
    void castsMatchTorch_data();
    void castsMatchTorch();
    void castKeepsSharingAndIntegers();
    void castErrors();
    void mapDevices();
    void previewDoesNotConvert();
    void applyAtPathKeepsTheRest();
    void operationErrors();
    void loadReportGroups();
    void loadReportFilledByTorch();
    void loadReportDtypes();
    void suffixMatching_data();
    void suffixMatching();
    void proposalIsDeterministicAndLossless();
    void proposalPicksTheStateDict();
    void diff();
    void descriptions();

private:
    QTemporaryDir m_dir;
    QString path(const QString &name) const { return m_dir.filePath(name); }
    QJsonObject loadIntoResnet18(const Value &stateDict, const QString &name, int numClasses);
    QByteArray torchCast(DType from, DType to);
    QHash<QString, QByteArray> m_torchCasts;
};

void TestCheckpointRepair::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QCOMPARE(resnet18Keys().spec.size(), 122);
    QCOMPARE(resnet18Keys(1000, true).spec.size(), 122);
}

QJsonObject TestCheckpointRepair::loadIntoResnet18(const Value &stateDict, const QString &name,
                                                   int numClasses)
{
    const Status written = writeCheckpoint(path(name), stateDict);
    if (!written) {
        qWarning().noquote() << written.errorMessage();
        return {};
    }
    const QJsonObject result
        = runOracleJson({u"load"_s, path(name), u"--num-classes"_s, QString::number(numClasses)})
              .object();
    QFile::remove(path(name));
    return result;
}

// ---- Finding state dicts

void TestCheckpointRepair::findsStateDicts()
{
    const Value sd3 = Value::orderedDict({{"model.a.weight", zerosOf({2})},
                                          {"model.a.bias", zerosOf({2})},
                                          {"model.b.weight", zerosOf({3, 2})}});
    // A Lightning checkpoint: the state dict, optimizer states in a list, callbacks.
    const Value lightning = Value::dict({
        {"epoch", 3},
        {"global_step", 100},
        {"pytorch-lightning_version", "1.9.0"},
        {"state_dict", sd3},
        {"optimizer_states",
         Value::list({Value::dict(
             {{"state", Value::dict({{Value(0), Value::dict({{"exp_avg", zerosOf({2})}})}})},
              {"param_groups", Value::list()}})})},
        {"callbacks",
         Value::dict({{"EarlyStopping{'monitor': 'val_loss'}",
                       Value::dict({{"best_score", zerosOf({})}, {"wait_count", 0}})}})},
    });
    QList<StateDictCandidate> found = findStateDicts(lightning);
    QCOMPARE(found.size(), 2);
    QCOMPARE(found[0].path, KeyPath{u"state_dict"_s});
    QCOMPARE(found[0].tensorCount, 3);
    QCOMPARE(found[0].otherCount, 0);
    QCOMPARE(found[0].elementCount, 2 + 2 + 6);
    QCOMPARE(found[1].path, (KeyPath{u"callbacks"_s, u"EarlyStopping{'monitor': 'val_loss'}"_s}));
    QCOMPARE(found[1].tensorCount, 1);
    QCOMPARE(found[1].otherCount, 1);

    // Optimizer state (int keys) is not a candidate; EMA after the model on a tie.
    const Value optimizer = Value::dict(
        {{"state", Value::dict({{Value(0), Value::dict({{"exp_avg", zerosOf({2})}})}})},
         {"param_groups", Value::list({Value::dict({{"lr", 0.1}})})}});
    const Value withEma
        = Value::dict({{"model_ema", sd3}, {"optimizer", optimizer}, {"model", sd3}});
    found = findStateDicts(withEma);
    QCOMPARE(found.size(), 2);
    QCOMPARE(found[0].path, KeyPath{u"model"_s});
    QCOMPARE(found[1].path, KeyPath{u"model_ema"_s});

    // Two models: the bigger first; then the checkpoint's order.
    const Value sd2 = Value::orderedDict({{"w", zerosOf({1})}, {"b", zerosOf({1})}});
    found = findStateDicts(Value::dict(
        {{"modelB_state_dict", sd2}, {"modelA_state_dict", sd3}, {"modelC_state_dict", sd2}}));
    QCOMPARE(found.size(), 3);
    QCOMPARE(found[0].path, KeyPath{u"modelA_state_dict"_s});
    QCOMPARE(found[1].path, KeyPath{u"modelB_state_dict"_s});
    QCOMPARE(found[2].path, KeyPath{u"modelC_state_dict"_s});

    // A bare state dict is the root; nested ones have their path.
    found = findStateDicts(sd3);
    QCOMPARE(found.size(), 1);
    QVERIFY(found[0].path.isEmpty());
    found = findStateDicts(Value::dict({{"model", Value::dict({{"net", sd2}, {"step", 4}})}}));
    QCOMPARE(found.size(), 1);
    QCOMPARE(found[0].path, (KeyPath{u"model"_s, u"net"_s}));

    QVERIFY(findStateDicts(Value::list({sd3})).isEmpty());
    QVERIFY(findStateDicts(Value(3)).isEmpty());
    const Result<RepairProposal> none = proposeRepair(Value::list({sd3}), {});
    QVERIFY(!none);
    QVERIFY2(none.errorMessage().contains(u"no dict of tensors"_s),
             qPrintable(none.errorMessage()));
}

void TestCheckpointRepair::valueAtErrors()
{
    const Value root
        = Value::dict({{"epoch", 3}, {"model", Value::dict({{"net", Value::list()}})}});
    Result<Value> v = valueAt(root, {u"model"_s, u"net"_s});
    QVERIFY(v);
    QVERIFY(v->isList());
    QCOMPARE(valueAt(root, {}).value(), root);

    v = valueAt(root, {u"model"_s, u"ema"_s});
    QVERIFY(!v);
    QVERIFY2(v.errorMessage().contains(u"root[\"model\"] has no key “ema”"_s),
             qPrintable(v.errorMessage()));
    QVERIFY2(v.errorMessage().contains(u"“net”"_s), qPrintable(v.errorMessage()));

    v = valueAt(root, {u"epoch"_s, u"x"_s});
    QVERIFY(!v);
    QVERIFY2(v.errorMessage().contains(u"root[\"epoch\"] is an int, not a dict"_s),
             qPrintable(v.errorMessage()));
}

// ---- Prefixes on real resnet18 keys

void TestCheckpointRepair::dataParallelStripLoadsIntoResnet18()
{
    const ModelKeys &model = resnet18Keys();
    const ModelKeys &wrapped = resnet18Keys(1000, true);
    // The oracle's DataParallel keys are the model's with "module.".
    QCOMPARE(wrapped.spec.first().key, u"module.conv1.weight"_s);
    QCOMPARE(wrapped.metadata.first().first, QString());
    QCOMPARE(wrapped.metadata[1].first, u"module"_s);

    const Value dp = stateDictOf(wrapped);
    const LoadReport before = loadReport(dp, model.spec);
    QCOMPARE(before.matched.size(), 0);
    QCOMPARE(before.unexpected.size(), 122);
    QVERIFY(!before.loadsStrictly());
    // Without "bn1" in _metadata, BatchNorm would add num_batches_tracked itself: not missing.
    QCOMPARE(before.filledByTorch.size(), 20);
    QCOMPARE(before.missing.size(), 102);
    QVERIFY2(before.summary.contains(u"Nothing matches"_s), qPrintable(before.summary));

    const Result<RepairResult> result = applyOperations(dp, {StripPrefix{u"module."_s}});
    QVERIFY2(result, qPrintable(result.errorMessage()));
    QCOMPARE(result->steps.size(), 1);
    const OperationReport &step = result->steps.first();
    QCOMPARE(step.changed, 122);
    QCOMPARE(step.renamed.size(), 122);
    QCOMPARE(step.renamed.first(), std::make_pair(u"module.conv1.weight"_s, u"conv1.weight"_s));
    QCOMPARE(step.summary, u"Stripped “module.” from 122 of 122 keys"_s);
    // Every module name loses "module."; DataParallel's own "" entry goes.
    QCOMPARE(step.notes,
             QStringList{u"_metadata: %1 module names renamed to follow the keys; dropped the "
                         "entries of “” (no longer modules of the state dict)"_s.arg(
                             model.metadata.size())});

    QCOMPARE(keysOf(result->value), specKeys(model.spec));
    QVERIFY(result->value.isOrderedDict());
    QCOMPARE(metadataOf(result->value), model.metadata);
    // The input is untouched.
    QCOMPARE(keysOf(dp).first(), u"module.conv1.weight"_s);
    QCOMPARE(metadataOf(dp), wrapped.metadata);

    const LoadReport after = loadReport(result->value, model.spec);
    QVERIFY(after.loadsStrictly());
    QCOMPARE(after.matched.size(), 122);
    QCOMPARE(after.matchedElements, after.targetElements);
    QCOMPARE(after.targetElements, 11689512 + 9620); // parameters + BatchNorm buffers
    QCOMPARE(after.summary,
             u"All 122 keys of the model are in the checkpoint with the same shapes "
             "(11,699,132 values); load_state_dict(strict=True) will load it."_s);

    // torch agrees: the stripped file loads strictly, with the model's own _metadata.
    const QJsonObject loaded = loadIntoResnet18(result->value, u"dp.pt"_s, 1000);
    QVERIFY2(loaded[u"ok"_s].toBool(), qPrintable(loaded[u"error"_s].toString()));
    QCOMPARE(loaded[u"metadata"_s], loaded[u"expected_metadata"_s]);

    const Result<RepairProposal> proposal = proposeRepair(dp, model.spec);
    QVERIFY(proposal);
    QVERIFY2(proposal->operations == QList<Operation>{StripPrefix{u"module."_s}},
             qPrintable(opsText(proposal->operations)));
    QVERIFY(proposal->path.isEmpty());
    QVERIFY(proposal->after.loadsStrictly());
    QVERIFY(proposal->suggestions.isEmpty());
    QCOMPARE(proposal->summary,
             u"Strip the prefix “module.”: 122 of 122 keys of the model match (before: 0)."_s);
}

void TestCheckpointRepair::addPrefixFollowsMetadata()
{
    const ModelKeys &model = resnet18Keys();
    const ModelKeys &wrapped = resnet18Keys(1000, true);
    const Result<RepairResult> result
        = applyOperations(stateDictOf(model), {AddPrefix{u"module."_s}});
    QVERIFY(result);
    QCOMPARE(keysOf(result->value), specKeys(wrapped.spec));
    // DataParallel's own "" entry has no counterpart; the rest is the same.
    QCOMPARE(metadataOf(result->value), wrapped.metadata.mid(1));
    QCOMPARE(result->steps.first().summary, u"Added “module.” to 122 keys"_s);

    // A prefix that is no module name: the root's entry has no name any more.
    const Result<RepairResult> odd = applyOperations(stateDictOf(model), {AddPrefix{u"x_"_s}});
    QVERIFY(odd);
    QCOMPARE(metadataOf(odd->value).size(), model.metadata.size() - 1);
    QCOMPARE(metadataOf(odd->value).first().first, u"x_conv1"_s);
}

void TestCheckpointRepair::lightningExtractAndStrip()
{
    const ModelKeys &model = resnet18Keys();
    // A LightningModule with `self.model = resnet18()`: keys "model.*", _metadata with the
    // LightningModule's "" and "model.*".
    Result<RepairResult> prefixed = applyOperations(stateDictOf(model), {AddPrefix{u"model."_s}});
    QVERIFY(prefixed);
    Value stateDict = prefixed->value;
    QList<std::pair<QString, qint64>> metadata = metadataOf(stateDict);
    metadata.prepend({QString(), 1});
    stateDict.setState(Value::dict({{"_metadata", metadataValue(metadata)}}));
    const Value checkpoint = Value::dict({
        {"epoch", 7},
        {"global_step", 7000},
        {"pytorch-lightning_version", "1.9.0"},
        {"state_dict", stateDict},
        {"loops", Value::dict({{"fit_loop", Value::dict({{"epoch_progress", 7}})}})},
        {"optimizer_states", Value::list({Value::dict({{"param_groups", Value::list()}})})},
        {"lr_schedulers", Value::list()},
        {"hparams_name", "kwargs"},
        {"hyper_parameters", Value::dict({{"lr", 0.1}})},
    });
    const QList<StateDictCandidate> found = findStateDicts(checkpoint);
    QCOMPARE(found.size(), 1);
    QCOMPARE(found.first().path, KeyPath{u"state_dict"_s});
    QCOMPARE(found.first().tensorCount, 122);

    const Result<RepairResult> extracted
        = applyOperations(checkpoint, {ExtractDict{{u"state_dict"_s}}, StripPrefix{u"model."_s}});
    QVERIFY2(extracted, qPrintable(extracted.errorMessage()));
    QCOMPARE(extracted->steps.first().summary,
             u"Extracted root[\"state_dict\"]: 122 entries (122 tensors)"_s);
    QVERIFY(loadReport(extracted->value, model.spec).loadsStrictly());
    QCOMPARE(metadataOf(extracted->value), model.metadata);
    const QJsonObject loaded = loadIntoResnet18(extracted->value, u"lightning.pt"_s, 1000);
    QVERIFY2(loaded[u"ok"_s].toBool(), qPrintable(loaded[u"error"_s].toString()));
    QCOMPARE(loaded[u"metadata"_s], loaded[u"expected_metadata"_s]);

    const Result<RepairProposal> proposal = proposeRepair(checkpoint, model.spec);
    QVERIFY(proposal);
    QCOMPARE(proposal->path, KeyPath{u"state_dict"_s});
    QVERIFY2(proposal->operations == QList<Operation>{StripPrefix{u"model."_s}},
             qPrintable(opsText(proposal->operations)));
    QVERIFY(proposal->after.loadsStrictly());
    QVERIFY2(proposal->summary.startsWith(u"In root[\"state_dict\"]: Strip the prefix “model.”"_s),
             qPrintable(proposal->summary));
}

void TestCheckpointRepair::stackedCompilePrefix()
{
    const ModelKeys &model = resnet18Keys();
    // torch.compile(DataParallel(model)): "_orig_mod.module." (synthesised: no torch.compile in
    // torch 1.13).
    const Result<RepairResult> stacked = applyOperations(
        stateDictOf(model), {AddPrefix{u"module."_s}, AddPrefix{u"_orig_mod."_s}});
    QVERIFY(stacked);
    const Value compiled = stacked->value;
    QCOMPARE(keysOf(compiled).first(), u"_orig_mod.module.conv1.weight"_s);

    const Result<RepairProposal> proposal = proposeRepair(compiled, model.spec);
    QVERIFY(proposal);
    QVERIFY2(proposal->operations == QList<Operation>{StripPrefix{u"_orig_mod.module."_s}},
             qPrintable(opsText(proposal->operations)));
    QVERIFY(proposal->after.loadsStrictly());

    // One prefix at a time works too.
    const Result<RepairResult> inTwo
        = applyOperations(compiled, {StripPrefix{u"_orig_mod."_s}, StripPrefix{u"module."_s}});
    QVERIFY(inTwo);
    QCOMPARE(inTwo->steps[0].changed, 122);
    QCOMPARE(keysOf(inTwo->value), specKeys(model.spec));
    QCOMPARE(metadataOf(inTwo->value), model.metadata);
}

void TestCheckpointRepair::stripOnlyKeysWithThePrefix()
{
    const Value mixed = Value::orderedDict({{"module.a.weight", zerosOf({2})},
                                            {"b.weight", zerosOf({2})},
                                            {"module.c.weight", zerosOf({2})},
                                            {Value(5), zerosOf({1})},
                                            {"module", 3}});
    const Result<RepairResult> result = applyOperations(mixed, {StripPrefix{u"module."_s}});
    QVERIFY(result);
    QCOMPARE(keysOf(result->value),
             (QStringList{u"a.weight"_s, u"b.weight"_s, u"c.weight"_s, QString(), u"module"_s}));
    QCOMPARE(result->value.entries()[3].first, Value(5));
    const OperationReport &step = result->steps.first();
    QCOMPARE(step.changed, 2);
    QCOMPARE(step.summary, u"Stripped “module.” from 2 of 4 keys"_s);
    QCOMPARE(step.notes, QStringList{u"2 keys without “module.” stay as they are"_s});

    // Keys whose stripped names are taken keep the prefix when asked (to a fixed point:
    // "module.module.a" would become the kept "module.a").
    const Value clash = Value::orderedDict({{"a", zerosOf({1})},
                                            {"module.a", zerosOf({2})},
                                            {"module.b", zerosOf({3})},
                                            {"module.module.a", zerosOf({4})}});
    const Result<RepairResult> refused = applyOperations(clash, {StripPrefix{u"module."_s}});
    QVERIFY(!refused);
    const Result<RepairResult> kept = applyOperations(clash, {StripPrefix{u"module."_s, true}});
    QVERIFY2(kept, qPrintable(kept.errorMessage()));
    QCOMPARE(keysOf(kept->value),
             (QStringList{u"a"_s, u"module.a"_s, u"b"_s, u"module.module.a"_s}));
    QCOMPARE(kept->steps[0].changed, 1);
    QCOMPARE(kept->steps[0].summary, u"Stripped “module.” from 1 of 4 keys"_s);
    QCOMPARE(kept->steps[0].notes,
             (QStringList{u"1 key without “module.” stays as it is"_s,
                          u"2 keys keep “module.” because their stripped names are taken: "
                          "“module.a” and “module.module.a”"_s}));

    const Result<RepairResult> nothing = applyOperations(mixed, {StripPrefix{u"_orig_mod."_s}});
    QVERIFY(nothing);
    QCOMPARE(nothing->value, mixed);
    QCOMPARE(nothing->steps.first().changed, 0);
    QCOMPARE(nothing->steps.first().summary, u"No key starts with “_orig_mod.”; nothing changed"_s);
}

void TestCheckpointRepair::headReplaced()
{
    const ModelKeys &model = resnet18Keys(1000);
    // Fine-tuned for 10 classes, saved from DataParallel.
    const Value finetuned = stateDictOf(resnet18Keys(10, true));
    const Result<RepairProposal> proposal = proposeRepair(finetuned, model.spec);
    QVERIFY(proposal);
    QVERIFY2(proposal->operations == QList<Operation>{StripPrefix{u"module."_s}},
             qPrintable(opsText(proposal->operations)));
    const LoadReport &after = proposal->after;
    QCOMPARE(after.matched.size(), 120);
    QVERIFY(after.missing.isEmpty());
    QVERIFY(after.unexpected.isEmpty());
    QCOMPARE(after.mismatched.size(), 2);
    QCOMPARE(after.mismatched[0].key, u"fc.weight"_s);
    QCOMPARE(after.mismatched[0].sourceShape, (QList<qint64>{10, 512}));
    QCOMPARE(after.mismatched[0].targetShape, (QList<qint64>{1000, 512}));
    QCOMPARE(after.mismatched[1].key, u"fc.bias"_s);
    QCOMPARE(after.mismatchedGroups.size(), 1);
    QCOMPARE(after.mismatchedGroups[0].pattern, u"fc.*"_s);
    QCOMPARE(after.mismatchedGroups[0].text(u"with another shape"_s),
             u"fc.*: 2 with another shape"_s);
    QCOMPARE(after.matchedElements, after.targetElements - 513000);
    QVERIFY2(after.summary.contains(u"2 have another shape (fc.weight: [10, 512] in the "
                                    "checkpoint, [1000, 512] in the model, and 1 more)"_s),
             qPrintable(after.summary));
    QVERIFY2(after.summary.endsWith(u"fc.weight has 10 outputs in the checkpoint and 1,000 in "
                                    "the model: a head for another number of classes?"_s),
             qPrintable(after.summary));
    QVERIFY2(after.summary.contains(u"fails even with strict=False"_s), qPrintable(after.summary));

    QCOMPARE(proposal->suggestions.size(), 1);
    QVERIFY(proposal->suggestions[0].operation == Operation(DropKeys{{u"fc.*"_s}}));

    QList<Operation> ops = proposal->operations;
    ops.append(proposal->suggestions[0].operation);
    const Result<RepairResult> repaired = applyOperations(finetuned, ops);
    QVERIFY(repaired);
    QCOMPARE(repaired->steps[1].dropped, (QStringList{u"fc.weight"_s, u"fc.bias"_s}));
    QCOMPARE(repaired->steps[1].summary, u"Dropped 2 keys (5,130 values) matching fc.*"_s);
    const LoadReport dropped = loadReport(repaired->value, model.spec);
    QCOMPARE(dropped.missing, (QStringList{u"fc.weight"_s, u"fc.bias"_s}));
    QVERIFY(dropped.unexpected.isEmpty());
    QVERIFY(dropped.mismatched.isEmpty());
    QCOMPARE(dropped.missingGroups.size(), 1);
    QCOMPARE(dropped.missingGroups[0].text(u"missing"_s), u"fc.*: 2 missing"_s);
    QVERIFY2(dropped.summary.contains(u"strict=False loads the 120 matching keys"_s),
             qPrintable(dropped.summary));

    // torch agrees: only fc.* missing.
    const QJsonObject loaded = loadIntoResnet18(repaired->value, u"head.pt"_s, 1000);
    QVERIFY(!loaded[u"ok"_s].toBool());
    const QString error = loaded[u"error"_s].toString();
    QVERIFY2(error.contains(u"Missing key(s) in state_dict: \"fc.weight\", \"fc.bias\"."_s),
             qPrintable(error));
    QVERIFY2(!error.contains(u"size mismatch"_s) && !error.contains(u"Unexpected"_s),
             qPrintable(error));
}

// ---- Collisions and renames

void TestCheckpointRepair::renameCollisionsRefused_data()
{
    QTest::addColumn<Value>("dict");
    QTest::addColumn<Operation>("operation");
    QTest::addColumn<QStringList>("named");

    const Value plain = Value::orderedDict(
        {{"a", zerosOf({1})}, {"module.a", zerosOf({1})}, {"module.b", zerosOf({1})}});
    QTest::newRow("strip") << plain << Operation(StripPrefix{u"module."_s})
                           << QStringList{u"“a” and “module.a” would both become “a”"_s};
    const Value blocks = Value::orderedDict(
        {{"layer1.0.conv.weight", zerosOf({1})}, {"layer1.1.conv.weight", zerosOf({1})}});
    QTest::newRow("regex") << blocks
                           << Operation(RenameRegex{uR"(^(layer\d)\.\d\.)"_s, uR"(\1.)"_s})
                           << QStringList{u"“layer1.0.conv.weight” and “layer1.1.conv.weight” "
                                          "would both become “layer1.conv.weight”"_s};
    QTest::newRow("map onto one")
        << plain << Operation(RenameKeys{{{u"module.a"_s, u"c"_s}, {u"module.b"_s, u"c"_s}}})
        << QStringList{u"“module.a” and “module.b” would both become “c”"_s};
    QTest::newRow("map onto existing")
        << plain << Operation(RenameKeys{{{u"module.b"_s, u"a"_s}}})
        << QStringList{u"“a” and “module.b” would both become “a”"_s};
    QTest::newRow("regex empty") << blocks << Operation(RenameRegex{u".*"_s, u"x"_s})
                                 << QStringList{u"would both become “xx”"_s};
}

void TestCheckpointRepair::renameCollisionsRefused()
{
    QFETCH(Value, dict);
    QFETCH(Operation, operation);
    QFETCH(QStringList, named);
    const Value copy = dict;
    const Result<RepairResult> result = applyOperations(dict, {operation});
    QVERIFY(!result);
    for (const QString &text : named)
        QVERIFY2(result.errorMessage().contains(text), qPrintable(result.errorMessage()));
    QVERIFY2(result.errorMessage().contains(u"one of them would be lost"_s),
             qPrintable(result.errorMessage()));
    QCOMPARE(dict, copy);
    // Also in a preview, and with the step named when there are several.
    const Result<RepairPreview> preview
        = previewOperations(dict, {AddPrefix{u"p."_s}, StripPrefix{u"p."_s}, operation});
    QVERIFY(!preview);
    QVERIFY2(preview.errorMessage().startsWith(u"Step 3 of 3 ("_s),
             qPrintable(preview.errorMessage()));
}

void TestCheckpointRepair::renameSwapAndAbsentKeys()
{
    const Tensor a = floats({1});
    const Tensor b = floats({2});
    const Value dict = Value::orderedDict({{"a", a}, {"b", b}, {"c", 3}});
    const Result<RepairResult> swapped = applyOperations(
        dict, {RenameKeys{{{u"a"_s, u"b"_s}, {u"b"_s, u"a"_s}, {u"zz"_s, u"y"_s}}}});
    QVERIFY2(swapped, qPrintable(swapped.errorMessage()));
    QCOMPARE(keysOf(swapped->value), (QStringList{u"b"_s, u"a"_s, u"c"_s}));
    QCOMPARE(swapped->value.value(u"b").toTensor().storage, a.storage);
    QCOMPARE(swapped->value.value(u"a").toTensor().storage, b.storage);
    QCOMPARE(swapped->steps[0].changed, 2);
    QCOMPARE(swapped->steps[0].notes, QStringList{u"1 key to rename not in the dict: “zz”"_s});

    const Result<RepairResult> twice
        = applyOperations(dict, {RenameKeys{{{u"a"_s, u"x"_s}, {u"a"_s, u"y"_s}}}});
    QVERIFY(!twice);
    QVERIFY2(twice.errorMessage().contains(u"Cannot rename “a” twice"_s),
             qPrintable(twice.errorMessage()));
}

void TestCheckpointRepair::regexRenameLikePython()
{
    const QList<std::pair<QString, QString>> rules = {
        {uR"(^module\.)"_s, QString()},
        {uR"(\.gamma$)"_s, u".weight"_s},
        {uR"(^(.*)\.beta$)"_s, uR"(\1.bias)"_s},
        {uR"((?P<block>layer\d+)\.(\d+))"_s, uR"(\g<block>_\2)"_s},
        {uR"(bn(\d))"_s, uR"(norm\g<1>)"_s},
        {u"x*"_s, u"-"_s},
        {uR"(\.)"_s, u"/"_s},
        {uR"((a)|(b))"_s, uR"([\1\2])"_s},
        {uR"(\d+)"_s, uR"(\\\0)"_s}, // \0 is octal in Python: invalid in ours, skipped below
        {u"^"_s, u"pre."_s},
        {uR"(weight)"_s, uR"(\g<0>s)"_s},
    };
    QStringList keys = specKeys(resnet18Keys(1000, true).spec).mid(0, 30);
    keys += {u"a.gamma"_s, u"b.beta"_s, u"xab"_s, u"axxb"_s, u"layer12.34.bn5.weight"_s};

    QJsonArray jsonRules;
    for (const auto &[pattern, replacement] : rules)
        jsonRules.append(QJsonArray{pattern, replacement});
    QFile file(path(u"resub.json"_s));
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(QJsonDocument(QJsonObject{{u"rules"_s, jsonRules},
                                         {u"keys"_s, QJsonArray::fromStringList(keys)}})
                   .toJson());
    file.close();
    const QJsonArray expected = runOracleJson({u"resub"_s, path(u"resub.json"_s)}).array();
    QCOMPARE(expected.size(), keys.size());

    Value::Entries entries;
    for (const QString &key : std::as_const(keys))
        entries.append({Value(key), zerosOf({1})});
    const Value dict = Value::orderedDict(entries);
    int compared = 0;
    for (qsizetype r = 0; r < rules.size(); ++r) {
        const Result<RepairResult> result
            = applyOperations(dict, {RenameRegex{rules[r].first, rules[r].second}});
        QStringList python;
        bool pythonFailed = false;
        for (qsizetype k = 0; k < keys.size(); ++k) {
            pythonFailed = pythonFailed || expected[k].toArray()[r].isNull();
            python.append(expected[k].toArray()[r].toString());
        }
        if (rules[r].second.contains(u"\\0"_s)) {
            QVERIFY2(!result, qPrintable(rules[r].first)); // we refuse \0 rather than guess
            continue;
        }
        QVERIFY2(!pythonFailed, qPrintable(rules[r].first));
        const bool pythonMerges
            = QSet<QString>(python.cbegin(), python.cend()).size() < python.size();
        if (pythonMerges) {
            QVERIFY2(!result, qPrintable(rules[r].first));
            continue;
        }
        QVERIFY2(result, qPrintable(rules[r].first + u": "_s + result.errorMessage()));
        QCOMPARE(keysOf(result->value), python);
        ++compared;
    }
    QVERIFY(compared >= 9);
}

void TestCheckpointRepair::regexRenameDropsMetadata()
{
    const Value sd = stateDictOf(resnet18Keys());
    const Result<RepairResult> renamed
        = applyOperations(sd, {RenameRegex{uR"(^layer(\d)\.)"_s, uR"(stage\1.)"_s}});
    QVERIFY(renamed);
    int layerKeys = 0;
    for (const KeySpec &spec : resnet18Keys().spec)
        layerKeys += spec.key.startsWith(u"layer"_s) ? 1 : 0;
    QCOMPARE(layerKeys, 114);
    QCOMPARE(renamed->steps[0].changed, layerKeys);
    QVERIFY(renamed->value.isOrderedDict());
    QVERIFY(renamed->value.state().isNone());
    QVERIFY2(renamed->steps[0].notes.join(u'\n').contains(u"_metadata dropped"_s),
             qPrintable(renamed->steps[0].notes.join(u'\n')));

    // Nothing renamed: _metadata stays.
    const Result<RepairResult> same = applyOperations(sd, {RenameRegex{u"^nomatch"_s, u"x"_s}});
    QVERIFY(same);
    QCOMPARE(same->steps[0].changed, 0);
    QCOMPARE(metadataOf(same->value), resnet18Keys().metadata);
    QVERIFY(same->steps[0].notes.isEmpty());
}

void TestCheckpointRepair::regexErrors()
{
    const Value dict = Value::orderedDict({{"a.b", zerosOf({1})}});
    const auto error = [&](const QString &pattern, const QString &replacement) {
        const Result<RepairResult> r = applyOperations(dict, {RenameRegex{pattern, replacement}});
        return r ? QString() : r.errorMessage();
    };
    QVERIFY2(error(u"(a"_s, u"x"_s).contains(u"not a valid regular expression"_s),
             qPrintable(error(u"(a"_s, u"x"_s)));
    QVERIFY2(error(u"(a)"_s, uR"(\2)"_s).contains(u"refers to group 2, but the pattern has 1"_s),
             qPrintable(error(u"(a)"_s, uR"(\2)"_s)));
    QVERIFY(error(u"(a)"_s, uR"(\q)"_s).contains(u"unknown escape \\q"_s));
    QVERIFY(error(u"(a)"_s, uR"(\g<name>)"_s).contains(u"does not name"_s));
    QVERIFY(error(u"(a)"_s, u"x\\"_s).contains(u"lone backslash"_s));
    QVERIFY(error(QString(), u"x"_s).contains(u"empty pattern"_s));
    QVERIFY(error(u"(a)"_s, uR"(\1\\)"_s).isEmpty());
}

void TestCheckpointRepair::dropKeysLikeFnmatch()
{
    const QStringList patterns = {
        u"fc.*"_s,
        u"*.num_batches_tracked"_s,
        u"layer?.0.*"_s,
        u"layer[12].*"_s,
        u"layer[!12].*"_s,
        u"[a-c]*"_s,
        u"[z-a]*"_s,
        u"[!z-a]*"_s,
        u"*[[]*"_s,
        u"*]"_s,
        u"[]]*"_s,
        u"[!]]*"_s,
        u"bn[0-9-]*"_s,
        u"["_s,
        u"a["_s,
        u"*.weight"_s,
        u"?"_s,
        u"[-a]*"_s,
        u"[a-]*"_s,
        u"**"_s,
        u"fc.weight"_s,
        u"*.[rb]*"_s,
        u"[.]*"_s,
        u"layer[1-3-4].*"_s,
        u"[\\]*"_s,
        u"*\\*"_s,
        u"layer1.0.bn?.*"_s,
        u"[!a-c-e]*"_s,
    };
    QStringList keys = specKeys(resnet18Keys().spec);
    keys += {u"]x"_s,  u"["_s,   u"a["_s,   u"-x"_s,  u"bn-1"_s, u"d"_s,
             u"e.f"_s, u"\\x"_s, u"a\\*"_s, u"é.w"_s, u"a\nb"_s, u"layer-.0"_s};

    QFile file(path(u"fnmatch.json"_s));
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(QJsonDocument(QJsonObject{{u"patterns"_s, QJsonArray::fromStringList(patterns)},
                                         {u"keys"_s, QJsonArray::fromStringList(keys)}})
                   .toJson());
    file.close();
    const QJsonArray expected = runOracleJson({u"fnmatch"_s, path(u"fnmatch.json"_s)}).array();
    QCOMPARE(expected.size(), keys.size());

    Value::Entries entries;
    for (const QString &key : std::as_const(keys))
        entries.append({Value(key), zerosOf({1})});
    const Value dict = Value::orderedDict(entries);
    for (qsizetype p = 0; p < patterns.size(); ++p) {
        const Result<RepairResult> result = applyOperations(dict, {DropKeys{{patterns[p]}}});
        QVERIFY2(result, qPrintable(result.errorMessage()));
        QStringList pythonDropped;
        for (qsizetype k = 0; k < keys.size(); ++k) {
            if (expected[k].toArray()[p].toBool())
                pythonDropped.append(keys[k]);
        }
        QVERIFY2(result->steps[0].dropped == pythonDropped,
                 qPrintable(patterns[p] + u": ours "_s + result->steps[0].dropped.join(u' ')
                            + u" / Python "_s + pythonDropped.join(u' ')));
        QCOMPARE(result->value.size(), keys.size() - pythonDropped.size());
    }

    // Several patterns at once; one that matches nothing gets a note.
    const Result<RepairResult> two
        = applyOperations(stateDictOf(resnet18Keys()),
                          {DropKeys{{u"fc.*"_s, u"classifier.*"_s, u"*.num_batches_tracked"_s}}});
    QVERIFY(two);
    QCOMPARE(two->steps[0].dropped.size(), 22);
    QCOMPARE(two->steps[0].notes, QStringList{u"No key matches “classifier.*”"_s});
    // Dropping keeps _metadata: the modules are still there.
    QCOMPARE(metadataOf(two->value), resnet18Keys().metadata);
}

// ---- Casts

void TestCheckpointRepair::castsMatchTorch_data()
{
    QTest::addColumn<DType>("from");
    QTest::addColumn<DType>("to");
    for (const auto &[from, to] : castPairs())
        QTest::newRow(qPrintable(dtypeName(from) + u" → "_s + dtypeName(to))) << from << to;
}

QByteArray TestCheckpointRepair::torchCast(DType from, DType to)
{
    // One oracle run for every pair: starting torch dominates the time.
    if (m_torchCasts.isEmpty()) {
        QStringList args{u"cast"_s};
        for (const auto &[f, t] : castPairs()) {
            const QString name = dtypeName(f) + u'-' + dtypeName(t);
            if (!test::writeFile(path(name + u".in"_s), castInput(f)))
                return {};
            args += {path(name + u".in"_s), path(name + u".out"_s), dtypeName(f), dtypeName(t)};
        }
        const test::ProcessResult run = test::runOracle(u"checkpointrepair_oracle.py"_s, args);
        if (run.exitCode != 0) {
            qWarning().noquote() << "oracle failed:" << run.err.right(3000);
            return {};
        }
        for (const auto &[f, t] : castPairs()) {
            QFile file(path(dtypeName(f) + u'-' + dtypeName(t) + u".out"_s));
            if (file.open(QIODevice::ReadOnly))
                m_torchCasts.insert(dtypeName(f) + u'-' + dtypeName(t), file.readAll());
        }
    }
    return m_torchCasts.value(dtypeName(from) + u'-' + dtypeName(to));
}

void TestCheckpointRepair::castsMatchTorch()
{
    QFETCH(DType, from);
    QFETCH(DType, to);
    const QByteArray input = castInput(from);
    const QByteArray torch = torchCast(from, to);
    QVERIFY(!torch.isEmpty());

    const qint64 n = input.size() / elementSize(from);
    const Value dict = Value::orderedDict({{"t", Tensor::fromBytes(from, input, {n})}});
    const Result<RepairResult> result = applyOperations(dict, {CastFloat{to, {from}}});
    QVERIFY(result);
    const Tensor cast = result->value.value(u"t").toTensor();
    QCOMPARE(cast.dtype(), to);
    const QByteArray ours = cast.storage->bytes;
    QCOMPARE(ours.size(), torch.size());
    const int inSize = elementSize(from);
    const int outSize = elementSize(to);
    for (qint64 i = 0; i < n; ++i) {
        if (ours.mid(i * outSize, outSize) != torch.mid(i * outSize, outSize)) {
            QFAIL(qPrintable(u"element %1: input %2, torch %3, ours %4"_s.arg(i).arg(
                QString::fromLatin1(input.mid(i * inSize, inSize).toHex()),
                QString::fromLatin1(torch.mid(i * outSize, outSize).toHex()),
                QString::fromLatin1(ours.mid(i * outSize, outSize).toHex()))));
        }
    }
    QCOMPARE(result->steps[0].changed, 1);
}

void TestCheckpointRepair::castKeepsSharingAndIntegers()
{
    const Tensor base = floats({1.0f, 2.0f, 3.0f, 4.0f, 65520.0f, 1e-8f}, {2, 3});
    const Tensor row = base.view(3, {3}, {1});
    const Tensor column = base.view(1, {2}, {3});
    const Tensor weight = floats({0.5f, 0.25f}).asParameter(true);
    const Tensor steps = Tensor::fromBytes(DType::Int64, littleBytes<qint64>({7}), {});
    const Tensor mask = Tensor::fromBytes(DType::Bool, QByteArray("\x01\x00", 2), {2});
    const Tensor complex = Tensor::zeros(DType::Complex64, {2});
    const Tensor half = Tensor::fromBytes(DType::Float16, littleBytes<quint16>({0x3C00}), {1});
    const Value model = Value::orderedDict({{"base", base},
                                            {"row", row},
                                            {"tied", base},
                                            {"column", column},
                                            {"weight", weight},
                                            {"steps", steps},
                                            {"mask", mask},
                                            {"complex", complex},
                                            {"half", half}});
    const Value checkpoint = Value::dict(
        {{"model", model}, {"ema", Value::dict({{"base", base}})}, {"extra", Value::list({row})}});
    const QByteArray baseBytes = base.storage->bytes;

    const Result<RepairResult> result
        = applyOperations(checkpoint, {CastFloat{DType::Float16, {}}});
    QVERIFY(result);
    const Value cast = result->value.value(u"model");
    const Tensor b = cast.value(u"base").toTensor();
    QCOMPARE(b.dtype(), DType::Float16);
    QCOMPARE(b.shape, (QList<qint64>{2, 3}));
    QCOMPARE(littleBytes<quint16>({0x3C00, 0x4000, 0x4200, 0x4400, 0x7C00, 0x0000}),
             b.storage->bytes);
    // Shared before, shared after: the same new storage, with the views' layout.
    for (const QString &key : {u"row"_s, u"tied"_s, u"column"_s})
        QCOMPARE(cast.value(key).toTensor().storage, b.storage);
    QCOMPARE(result->value.value(u"ema").value(u"base").toTensor().storage, b.storage);
    QCOMPARE(result->value.value(u"extra").at(0).toTensor().storage, b.storage);
    const Tensor r = cast.value(u"row").toTensor();
    QCOMPARE(r.offset, 3);
    QCOMPARE(r.stride, QList<qint64>{1});
    QCOMPARE(cast.value(u"column").toTensor().stride, QList<qint64>{3});
    // Parameters stay parameters; integers, bools, complex and float16 are untouched.
    const Tensor w = cast.value(u"weight").toTensor();
    QVERIFY(w.parameter);
    QVERIFY(w.requiresGrad);
    QCOMPARE(w.dtype(), DType::Float16);
    QCOMPARE(cast.value(u"steps").toTensor().storage, steps.storage);
    QCOMPARE(cast.value(u"mask").toTensor().storage, mask.storage);
    QCOMPARE(cast.value(u"complex").toTensor().storage, complex.storage);
    QCOMPARE(cast.value(u"half").toTensor().storage, half.storage);
    // The input is untouched.
    QCOMPARE(base.storage->dtype, DType::Float32);
    QCOMPARE(base.storage->bytes, baseBytes);
    QCOMPARE(checkpoint.value(u"model").value(u"row").toTensor().storage, base.storage);

    const OperationReport &step = result->steps[0];
    QCOMPARE(step.changed, 7); // base, row, tied, column, weight, ema.base, extra[0]
    QCOMPARE(step.summary,
             u"Cast 7 tensors (7 float32, 2 storages) to float16: 32 bytes → 16 bytes"_s);
    QCOMPARE(step.notes, QStringList{u"Left as they are: 1 int64, 1 bool and 1 complex64"_s});

    // Only the types asked for; back to float32 exactly.
    const Result<RepairResult> onlyHalf
        = applyOperations(model, {CastFloat{DType::Float32, {DType::Float16}}});
    QVERIFY(onlyHalf);
    QCOMPARE(onlyHalf->value.value(u"base").toTensor().storage, base.storage);
    QCOMPARE(onlyHalf->value.value(u"half").toTensor().storage->bytes,
             littleBytes<quint32>({0x3F800000u}));
    const Result<RepairResult> roundTrip = applyOperations(cast, {CastFloat{DType::Float32, {}}});
    QVERIFY(roundTrip);
    QCOMPARE(roundTrip->value.value(u"row").toTensor().contiguousBytes().value(),
             littleBytes<float>({4.0f, std::numeric_limits<float>::infinity(), 0.0f}));
}

void TestCheckpointRepair::castErrors()
{
    const Value dict = Value::orderedDict({{"a", zerosOf({1})}});
    Result<RepairResult> r = applyOperations(dict, {CastFloat{DType::Int8, {}}});
    QVERIFY(!r);
    QVERIFY2(r.errorMessage().contains(u"Cannot cast to int8"_s), qPrintable(r.errorMessage()));
    r = applyOperations(dict, {CastFloat{DType::Float16, {DType::Int64}}});
    QVERIFY(!r);
    QVERIFY2(r.errorMessage().contains(u"integer, bool and complex tensors stay"_s),
             qPrintable(r.errorMessage()));
    r = applyOperations(dict, {CastFloat{DType::Float32, {}}});
    QVERIFY(r);
    QCOMPARE(r->steps[0].summary, u"No tensor to cast to float32"_s);
    QCOMPARE(r->value.value(u"a").toTensor().storage, dict.value(u"a").toTensor().storage);
}

void TestCheckpointRepair::mapDevices()
{
    const auto on = [](const QString &device, std::initializer_list<float> values) {
        Tensor t = floats(values);
        t.storage->device = device;
        return t;
    };
    const Tensor a = on(u"cuda:1"_s, {1, 2});
    const Tensor b = on(u"cuda:0"_s, {3});
    const Tensor c = on(u"cuda:2"_s, {4});
    const Tensor d = on(u"cpu"_s, {5});
    const Value dict = Value::orderedDict(
        {{"a", a}, {"a_view", a.view(1, {1}, {1})}, {"b", b}, {"c", c}, {"d", d}});

    Result<RepairResult> r = applyOperations(dict, {MapDevices{u"cpu"_s, {}}});
    QVERIFY(r);
    for (const Value::Entry &e : r->value.entries())
        QCOMPARE(e.second.toTensor().device(), u"cpu"_s);
    QCOMPARE(r->value.value(u"a").toTensor().storage, r->value.value(u"a_view").toTensor().storage);
    QCOMPARE(r->value.value(u"d").toTensor().storage, d.storage); // already there: not copied
    QCOMPARE(r->value.value(u"a").toTensor().storage->bytes, a.storage->bytes);
    QCOMPARE(a.storage->device, u"cuda:1"_s); // input untouched
    QCOMPARE(r->steps[0].changed, 3);
    QCOMPARE(r->steps[0].summary,
             u"Moved 3 storages: cuda:0 → cpu (1), cuda:1 → cpu (1) and cuda:2 → cpu (1)"_s);
    QCOMPARE(r->steps[0].notes, QStringList{u"1 storage already in place"_s});

    r = applyOperations(dict,
                        {MapDevices{{}, {{u"cuda:1"_s, u"cuda:0"_s}, {u"cpu"_s, u"cuda:3"_s}}}});
    QVERIFY(r);
    QCOMPARE(r->value.value(u"a").toTensor().device(), u"cuda:0"_s);
    QCOMPARE(r->value.value(u"a_view").toTensor().device(), u"cuda:0"_s);
    QCOMPARE(r->value.value(u"b").toTensor().storage, b.storage);
    QCOMPARE(r->value.value(u"c").toTensor().device(), u"cuda:2"_s);
    QCOMPARE(r->value.value(u"d").toTensor().device(), u"cuda:3"_s);
    QCOMPARE(r->steps[0].changed, 2);

    // The result writes: torch.load sees the new tags (the writer's location records).
    QVERIFY(writeCheckpoint(path(u"devices.pt"_s), r->value));

    const QList<MapDevices> bad = {
        MapDevices{u"gpu 0"_s, {}},
        MapDevices{{}, {{u"cuda:"_s, u"cpu"_s}}},
        MapDevices{},
        MapDevices{{}, {{u"cpu"_s, u"cuda:0"_s}, {u"cpu"_s, u"cuda:1"_s}}},
    };
    for (const MapDevices &op : bad) {
        const Result<RepairResult> failed = applyOperations(dict, {op});
        QVERIFY2(!failed, qPrintable(op.description()));
    }
    const Result<RepairResult> failed = applyOperations(dict, {MapDevices{u"GPU"_s, {}}});
    QCOMPARE(failed.errorMessage(), u"“GPU” is not a device such as “cpu” or “cuda:0”."_s);
}

void TestCheckpointRepair::previewDoesNotConvert()
{
    const Value dp = stateDictOf(resnet18Keys(1000, true));
    const QList<Operation> ops = {StripPrefix{u"module."_s}, CastFloat{DType::Float16, {}},
                                  MapDevices{u"cuda:0"_s, {}}, DropKeys{{u"fc.*"_s}}};
    const Result<RepairPreview> preview = previewOperations(dp, ops);
    QVERIFY2(preview, qPrintable(preview.errorMessage()));
    QCOMPARE(preview->keysBefore, specKeys(resnet18Keys(1000, true).spec));
    QStringList expected = specKeys(resnet18Keys().spec);
    expected.removeAll(u"fc.weight"_s);
    expected.removeAll(u"fc.bias"_s);
    QCOMPARE(preview->keysAfter, expected);
    QCOMPARE(preview->steps.size(), 4);
    QCOMPARE(preview->steps[1].changed, 102);
    QCOMPARE(preview->steps[1].summary,
             u"Cast 102 tensors (102 float32, 102 storages) to float16: 46.8 MB → 23.4 MB"_s);
    QCOMPARE(preview->steps[1].notes, QStringList{u"Left as they are: 20 int64"_s});
    QCOMPARE(preview->steps[2].changed, 122);

    const Result<RepairResult> applied = applyOperations(dp, ops);
    QVERIFY(applied);
    for (qsizetype i = 0; i < ops.size(); ++i) {
        QCOMPARE(applied->steps[i].summary, preview->steps[i].summary);
        QCOMPARE(applied->steps[i].notes, preview->steps[i].notes);
        QCOMPARE(applied->steps[i].description, describe(ops[i]));
    }
    QCOMPARE(keysOf(applied->value), preview->keysAfter);
    QCOMPARE(applied->value.value(u"conv1.weight").toTensor().dtype(), DType::Float16);
    QCOMPARE(applied->value.value(u"conv1.weight").toTensor().device(), u"cuda:0"_s);
}

void TestCheckpointRepair::applyAtPathKeepsTheRest()
{
    const Value sd = Value::orderedDict({{"module.w", zerosOf({2})}, {"module.b", zerosOf({2})}});
    const Value checkpoint = Value::dict({{"epoch", 3},
                                          {"state", Value::dict({{"model", sd}, {"step", 9}})},
                                          {"optimizer", Value::dict({{"lr", 0.1}})}});
    const KeyPath at{u"state"_s, u"model"_s};
    const Result<RepairResult> r = applyOperations(checkpoint, {StripPrefix{u"module."_s}}, at);
    QVERIFY(r);
    QCOMPARE(keysOf(r->value), (QStringList{u"epoch"_s, u"state"_s, u"optimizer"_s}));
    QCOMPARE(r->value.value(u"epoch"), Value(3));
    QCOMPARE(r->value.value(u"state").value(u"step"), Value(9));
    QCOMPARE(keysOf(r->value.value(u"state").value(u"model")), (QStringList{u"w"_s, u"b"_s}));
    QCOMPARE(r->value.value(u"optimizer"), checkpoint.value(u"optimizer"));
    QCOMPARE(keysOf(checkpoint.value(u"state").value(u"model")).first(), u"module.w"_s);

    const Result<RepairPreview> preview
        = previewOperations(checkpoint, {StripPrefix{u"module."_s}}, at);
    QVERIFY(preview);
    QCOMPARE(preview->keysBefore, (QStringList{u"module.w"_s, u"module.b"_s}));
    QCOMPARE(preview->keysAfter, (QStringList{u"w"_s, u"b"_s}));

    const Result<RepairResult> missing = applyOperations(checkpoint, {}, {u"nope"_s});
    QVERIFY(!missing);
    QVERIFY2(missing.errorMessage().contains(u"root has no key “nope”"_s),
             qPrintable(missing.errorMessage()));
}

void TestCheckpointRepair::operationErrors()
{
    const Value list = Value::list({zerosOf({1})});
    const Value dict = Value::orderedDict({{"a", zerosOf({1})}, {"n", Value::list()}});
    const auto error = [](const Value &v, const Operation &op) {
        const Result<RepairResult> r = applyOperations(v, {op});
        return r ? QString() : r.errorMessage();
    };
    QVERIFY2(error(list, StripPrefix{u"m."_s}).contains(u"the value is a list, not a dict"_s),
             qPrintable(error(list, StripPrefix{u"m."_s})));
    QVERIFY(error(dict, StripPrefix{}).contains(u"empty prefix"_s));
    QVERIFY(error(dict, AddPrefix{}).contains(u"empty prefix"_s));
    QVERIFY(error(dict, DropKeys{}).contains(u"without a pattern"_s));
    QVERIFY(error(dict, ExtractDict{}).contains(u"without a path"_s));
    QVERIFY(error(dict, ExtractDict{{u"x"_s}}).contains(u"has no key “x”"_s));
    QVERIFY2(error(dict, ExtractDict{{u"n"_s}}).contains(u"it is a list, not a dict"_s),
             qPrintable(error(dict, ExtractDict{{u"n"_s}})));
    // Casting and moving need no dict.
    QVERIFY(error(list, CastFloat{DType::Float16, {}}).isEmpty());
    QVERIFY(error(list, MapDevices{u"cpu"_s, {}}).isEmpty());
    // No operations: the value itself.
    const Result<RepairResult> none = applyOperations(dict, {});
    QVERIFY(none);
    QCOMPARE(none->value, dict);
}

// ---- Load report

void TestCheckpointRepair::loadReportGroups()
{
    const ModelKeys &model = resnet18Keys();
    const Result<RepairResult> edited = applyOperations(
        stateDictOf(model), {DropKeys{{u"layer4.*"_s, u"layer3.1.bn2.running_*"_s}}});
    QVERIFY(edited);
    Value source = edited->value;
    source.insert(Value(u"aux.fc.weight"_s), zerosOf({4, 4}));
    source.insert(Value(u"aux.fc.bias"_s), zerosOf({4}));
    source.insert(Value(u"extra_token"_s), zerosOf({1, 4}));
    source.insert(Value(u"conv1.weight"_s), Value(3)); // not a tensor any more

    const LoadReport r = loadReport(source, model.spec);
    QCOMPARE(r.targetCount, 122);
    QCOMPARE(r.sourceCount, 122 - 32 + 3);
    QCOMPARE(r.missing.size(), 32);
    QCOMPARE(r.missingGroups.size(), 2);
    QCOMPARE(r.missingGroups[0].text(u"missing"_s), u"layer3.1.bn2.*: 2 of 5 missing"_s);
    QCOMPARE(r.missingGroups[0].keys,
             (QStringList{u"layer3.1.bn2.running_mean"_s, u"layer3.1.bn2.running_var"_s}));
    QCOMPARE(r.missingGroups[1].text(u"missing"_s), u"layer4.*: 30 missing"_s);
    QCOMPARE(r.unexpected, (QStringList{u"aux.fc.weight"_s, u"aux.fc.bias"_s, u"extra_token"_s}));
    QCOMPARE(r.unexpectedGroups.size(), 2);
    QCOMPARE(r.unexpectedGroups[0].text(u"unexpected"_s), u"aux.*: 2 unexpected"_s);
    QCOMPARE(r.unexpectedGroups[1].text(u"unexpected"_s), u"extra_token: unexpected"_s);
    QCOMPARE(r.mismatched.size(), 1);
    QCOMPARE(r.mismatched[0].sourceType, u"int"_s);
    QCOMPARE(r.mismatchedGroups[0].text(u"not loadable"_s), u"conv1.weight: not loadable"_s);
    QCOMPARE(r.matched.size(), 122 - 32 - 1);
    QVERIFY(r.filledByTorch.isEmpty());
    qint64 matched = 0;
    for (const KeySpec &spec : model.spec) {
        if (r.matched.contains(spec.key)) {
            qint64 n = 1;
            for (const qint64 s : spec.shape)
                n *= s;
            matched += n;
        }
    }
    QCOMPARE(r.matchedElements, matched);
    QCOMPARE(r.summary,
             u"89 of 122 keys of the model match the checkpoint, covering %1 of 11,699,132 values "
             "(%2); 32 are missing (layer3.1.bn2.* and layer4.*), 3 keys of the checkpoint are "
             "unexpected (aux.* and extra_token) and 1 has another shape (conv1.weight is int in "
             "the checkpoint). load_state_dict fails even with strict=False because of the "
             "shapes; drop those keys (or give the model the same shapes) to load the rest."_s
                 .arg(QLocale(QLocale::English).toString(matched))
                 .arg(QString::number(100.0 * double(matched) / 11699132.0, 'f', 1) + u'%'));
}

void TestCheckpointRepair::loadReportFilledByTorch()
{
    // Old torchvision files: no num_batches_tracked and no _metadata. BatchNorm adds the buffers
    // itself, and torch loads them strictly.
    const ModelKeys &model = resnet18Keys();
    const Result<RepairResult> old
        = applyOperations(stateDictOf(model, false), {DropKeys{{u"*.num_batches_tracked"_s}}});
    QVERIFY(old);
    const LoadReport r = loadReport(old->value, model.spec);
    QCOMPARE(r.filledByTorch.size(), 20);
    QVERIFY(r.missing.isEmpty());
    QVERIFY(r.loadsStrictly());
    QVERIFY2(r.summary.contains(u"BatchNorm fills in 20 num_batches_tracked buffers"_s),
             qPrintable(r.summary));
    const QJsonObject loaded = loadIntoResnet18(old->value, u"old.pt"_s, 1000);
    QVERIFY2(loaded[u"ok"_s].toBool(), qPrintable(loaded[u"error"_s].toString()));

    // With a _metadata of BatchNorm version 2 they are missing, and torch says so.
    const Result<RepairResult> modern
        = applyOperations(stateDictOf(model), {DropKeys{{u"*.num_batches_tracked"_s}}});
    QVERIFY(modern);
    const LoadReport m = loadReport(modern->value, model.spec);
    QVERIFY(m.filledByTorch.isEmpty());
    QCOMPARE(m.missing.size(), 20);
    const QJsonObject refused = loadIntoResnet18(modern->value, u"modern.pt"_s, 1000);
    QVERIFY(!refused[u"ok"_s].toBool());
    QVERIFY2(refused[u"error"_s].toString().contains(u"\"bn1.num_batches_tracked\""_s),
             qPrintable(refused[u"error"_s].toString()));
}

void TestCheckpointRepair::loadReportDtypes()
{
    const ModelKeys &model = resnet18Keys();
    const Result<RepairResult> half
        = applyOperations(stateDictOf(model), {CastFloat{DType::Float16, {}}});
    QVERIFY(half);
    const LoadReport r = loadReport(half->value, model.spec);
    QVERIFY(r.loadsStrictly());
    QCOMPARE(r.dtypeDiffers.size(), 102);
    QCOMPARE(r.dtypeDiffers[0].sourceDType, DType::Float16);
    QCOMPARE(r.dtypeDiffers[0].targetDType, DType::Float32);
    QVERIFY2(r.summary.endsWith(u"102 tensors have another dtype than the model's (102 float16 → "
                                "float32); load_state_dict converts them."_s),
             qPrintable(r.summary));
    const QJsonObject loaded = loadIntoResnet18(half->value, u"half.pt"_s, 1000);
    QVERIFY2(loaded[u"ok"_s].toBool(), qPrintable(loaded[u"error"_s].toString()));
    QCOMPARE(loaded[u"dtypes"_s][u"float16"_s].toInt(), 102);

    // A target from another checkpoint.
    QCOMPARE(targetFromStateDict(stateDictOf(model)), model.spec);
    QVERIFY(targetFromStateDict(Value(3)).isEmpty());
}

// ---- Proposal

void TestCheckpointRepair::suffixMatching_data()
{
    QTest::addColumn<Value>("source");
    QTest::addColumn<QList<Operation>>("expected");
    QTest::addColumn<int>("matched");

    QTest::newRow("unique matches only")
        << Value::orderedDict({
               {"net.blocks.0.attn.weight", zerosOf({4, 4})}, // unique, 4 components
               {"m.x.blocks.1.attn.weight", zerosOf({4, 4})}, // unique, 4 components
               {"final_norm.weight", zerosOf({4})}, // one component only
               {"a.proj.weight", zerosOf({2, 4})}, // two candidates for one key
               {"b.proj.weight", zerosOf({2, 4})},
               {"old.head.bias", zerosOf({3})}, // another shape
           })
        << QList<Operation>{RenameKeys{
               {{u"net.blocks.0.attn.weight"_s, u"encoder.blocks.0.attn.weight"_s},
                {u"m.x.blocks.1.attn.weight"_s, u"encoder.blocks.1.attn.weight"_s}}}}
        << 2;
    QTest::newRow("two sources for one target") << Value::orderedDict(
        {{"x.blocks.0.attn.weight", zerosOf({4, 4})}, {"y.blocks.0.attn.weight", zerosOf({4, 4})}})
                                                << QList<Operation>{} << 0;
    // z matches blocks.1 by 4 components and blocks.0 by 2; w both by 2: blocks.1 is z's,
    // blocks.0 stays ambiguous.
    QTest::newRow("longest wins") << Value::orderedDict(
        {{"z.blocks.1.attn.weight", zerosOf({4, 4})}, {"w.attn.weight", zerosOf({4, 4})}})
                                  << QList<Operation>{RenameKeys{
                                         {{u"z.blocks.1.attn.weight"_s,
                                           u"encoder.blocks.1.attn.weight"_s}}}}
                                  << 1;
    // A strip that fits one key exactly comes first; the rest is then unique.
    QTest::newRow("strip then suffix")
        << Value::orderedDict({{"q.encoder.blocks.1.attn.weight", zerosOf({4, 4})},
                               {"r.attn.weight", zerosOf({4, 4})}})
        << QList<Operation>{StripPrefix{u"q."_s},
                            RenameKeys{{{u"r.attn.weight"_s, u"encoder.blocks.0.attn.weight"_s}}}}
        << 2;
    QTest::newRow("shape decides")
        << Value::orderedDict({{"p.blocks.0.attn.weight", zerosOf({4, 5})},
                               {"p2.blocks.0.attn.weight", zerosOf({4, 4})}})
        << QList<Operation>{RenameKeys{
               {{u"p2.blocks.0.attn.weight"_s, u"encoder.blocks.0.attn.weight"_s}}}}
        << 1;
    // A prefix shared by several keys is a replacement, not per-key renames.
    QTest::newRow("replace prefix")
        << Value::orderedDict({{"backbone.blocks.0.attn.weight", zerosOf({4, 4})},
                               {"backbone.blocks.1.attn.weight", zerosOf({4, 4})},
                               {"backbone.norm.weight", zerosOf({4})},
                               {"head.proj.weight", zerosOf({2, 4})}})
        << QList<Operation>{RenameRegex{uR"(^backbone\.)"_s, u"encoder."_s}} << 4;
}

void TestCheckpointRepair::suffixMatching()
{
    QFETCH(Value, source);
    QFETCH(QList<Operation>, expected);
    QFETCH(int, matched);
    const TargetSpec target = {
        {u"encoder.blocks.0.attn.weight"_s, {4, 4}, DType::Float32},
        {u"encoder.blocks.1.attn.weight"_s, {4, 4}, DType::Float32},
        {u"encoder.norm.weight"_s, {4}, DType::Float32},
        {u"head.proj.weight"_s, {2, 4}, DType::Float32},
        {u"head.bias"_s, {2}, DType::Float32},
    };
    const Result<RepairProposal> proposal = proposeRepair(source, target);
    QVERIFY(proposal);
    QVERIFY2(proposal->operations == expected, qPrintable(opsText(proposal->operations)));
    QCOMPARE(proposal->after.matched.size(), matched);
    const Result<RepairResult> applied = applyOperations(source, proposal->operations);
    QVERIFY(applied);
    QCOMPARE(applied->value.size(), source.size());
}

void TestCheckpointRepair::proposalIsDeterministicAndLossless()
{
    const ModelKeys &model = resnet18Keys();
    QList<Value> sources;
    sources.append(stateDictOf(resnet18Keys(1000, true)));
    sources.append(stateDictOf(resnet18Keys(10, true)));
    // Stripping "module." would merge "module.conv1.weight" into an existing "conv1.weight".
    Value clash = stateDictOf(resnet18Keys(1000, true));
    clash.insert(Value(u"conv1.weight"_s), zerosOf({64, 3, 7, 7}));
    sources.append(clash);
    // Half the keys prefixed one way, half another, plus noise.
    Value::Entries mixed;
    int i = 0;
    for (const KeySpec &spec : model.spec) {
        const QString prefix = i++ % 2 ? u"module."_s : u"_orig_mod."_s;
        mixed.append({Value(prefix + spec.key), Value(Tensor::zeros(spec.dtype, spec.shape))});
    }
    mixed.append({Value(u"module.extra"_s), Value(zerosOf({1}))});
    mixed.append({Value(u"layer1.0.conv1.weight"_s), Value(zerosOf({1}))}); // wrong shape
    sources.append(Value::orderedDict(mixed));
    // Everything under a wrapper with two replacements needed.
    const Result<RepairResult> renamed = applyOperations(
        stateDictOf(model),
        {RenameRegex{uR"(^layer(\d))"_s, uR"(body.stage\1)"_s}, AddPrefix{u"net."_s}});
    QVERIFY(renamed);
    sources.append(renamed->value);

    QList<int> matchedAfter;
    QList<Operation> clashOps;
    QList<Operation> mixedOps;
    for (const Value &source : std::as_const(sources)) {
        const Result<RepairProposal> first = proposeRepair(source, model.spec);
        const Result<RepairProposal> second = proposeRepair(source, model.spec);
        QVERIFY(first && second);
        QVERIFY2(first->operations == second->operations, qPrintable(opsText(first->operations)));
        QCOMPARE(first->summary, second->summary);
        for (const Operation &op : first->operations) {
            QVERIFY2(!std::holds_alternative<DropKeys>(op), qPrintable(describe(op)));
            QVERIFY2(!std::holds_alternative<CastFloat>(op), qPrintable(describe(op)));
        }
        const Result<RepairResult> applied
            = applyOperations(source, first->operations, first->path);
        QVERIFY2(applied, qPrintable(applied.errorMessage()));
        // Lossless: the same number of entries and every storage still there.
        const Value after = valueAt(applied->value, first->path).value();
        QCOMPARE(after.size(), source.size());
        QList<const Storage *> before = storagesOf(source);
        QList<const Storage *> kept = storagesOf(after);
        std::sort(before.begin(), before.end());
        std::sort(kept.begin(), kept.end());
        QCOMPARE(kept, before);
        QCOMPARE(tensorCount(after), tensorCount(source));
        QCOMPARE(loadReport(after, model.spec).matched, first->after.matched);
        QVERIFY(first->after.matched.size() >= first->before.matched.size());
        matchedAfter.append(int(first->after.matched.size()));
        if (matchedAfter.size() == 3)
            clashOps = first->operations;
        if (matchedAfter.size() == 4)
            mixedOps = first->operations;
    }
    // The clash keeps its "module.conv1.weight" (unexpected); the mixed one its junk
    // "layer1.0.conv1.weight" (another shape), so "_orig_mod.layer1.0.conv1.weight" stays.
    QCOMPARE(matchedAfter, (QList<int>{122, 120, 122, 121, 122}));
    QCOMPARE(opsText(clashOps), u"[Strip the prefix “module.” where the name is free]"_s);
    QCOMPARE(opsText(mixedOps),
             u"[Strip the prefix “module.”; Strip the prefix “_orig_mod.” where the name is "
             "free]"_s);
}

void TestCheckpointRepair::proposalPicksTheStateDict()
{
    const ModelKeys &model = resnet18Keys();
    const Value sd = stateDictOf(resnet18Keys(1000, true));
    const Value other = Value::orderedDict(
        {{"a", zerosOf({1})}, {"b", zerosOf({1})}, {"c", zerosOf({1})}, {"d", zerosOf({1})}});
    // More tensors elsewhere, but the model fits the smaller one.
    Value::Entries many;
    for (int i = 0; i < 200; ++i)
        many.append({Value(u"k%1"_s.arg(i)), Value(zerosOf({1}))});
    const Value checkpoint = Value::dict(
        {{"tokenizer", Value::orderedDict(many)}, {"model_state_dict", sd}, {"probe", other}});
    const Result<RepairProposal> proposal = proposeRepair(checkpoint, model.spec);
    QVERIFY(proposal);
    QCOMPARE(proposal->path, KeyPath{u"model_state_dict"_s});
    QVERIFY(proposal->after.loadsStrictly());
    QCOMPARE(proposal->before.matched.size(), 0);

    // Nothing to do.
    const Result<RepairProposal> fits = proposeRepair(stateDictOf(model), model.spec);
    QVERIFY(fits);
    QVERIFY(fits->operations.isEmpty());
    QCOMPARE(fits->summary,
             u"The checkpoint fits the model as it is: 122 of 122 keys of the model match."_s);
}

// ---- Diff

void TestCheckpointRepair::diff()
{
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Tensor base = floats({1, 2, 3, 4}, {2, 2});
    const Value a = Value::orderedDict({
        {"w", floats({1.0f, 2.0f, 3.0f})},
        {"same", floats({1.5f})},
        {"steps", Tensor::fromBytes(DType::Int64, littleBytes<qint64>({1LL << 60}), {})},
        {"only_a.x", floats({1})},
        {"only_a.y", floats({1})},
        {"cfg", 3},
        {"shape", floats({1, 2})},
        {"h", floats({0.5f, -2.0f})},
        {"n", floats({nan, 1.0f})},
        {"m", floats({nan})},
        {"view", base.view(1, {2}, {2})}, // elements 2, 4
    });
    const Value b = Value::orderedDict({
        {"w", floats({1.0f, 2.5f, 3.0f})},
        {"same", floats({1.5f})},
        {"steps", Tensor::fromBytes(DType::Int64, littleBytes<qint64>({(1LL << 60) + 1}), {})},
        {"cfg", 4},
        {"shape", floats({1, 2, 3})},
        {"h", Tensor::fromBytes(DType::Float16, littleBytes<quint16>({0x3800, 0xC000}), {2})},
        {"n", floats({nan, 2.0f})},
        {"m", floats({0.0f})},
        {"view", floats({2, 4})},
        {"only_b", floats({1})},
    });
    const Result<StateDictDiff> d = diffStateDicts(a, b);
    QVERIFY2(d, qPrintable(d.errorMessage()));
    QCOMPARE(d->onlyInA, (QStringList{u"only_a.x"_s, u"only_a.y"_s}));
    QCOMPARE(d->onlyInB, QStringList{u"only_b"_s});
    QCOMPARE(d->otherDiffers, QStringList{u"cfg"_s});
    QCOMPARE(d->shapeDiffers.size(), 1);
    QCOMPARE(d->shapeDiffers[0].key, u"shape"_s);
    QCOMPARE(d->dtypeDiffers, QStringList{u"h"_s});
    QCOMPARE(d->compared.size(), 7);
    QHash<QString, TensorDifference> byKey;
    for (const TensorDifference &t : d->compared)
        byKey.insert(t.key, t);
    QCOMPARE(byKey[u"w"_s].maxAbsDiff, 0.5);
    QVERIFY(!byKey[u"w"_s].identical);
    QVERIFY(byKey[u"same"_s].identical);
    QCOMPARE(byKey[u"steps"_s].maxAbsDiff, 1.0); // exact for int64 beyond 2^53
    QVERIFY(!byKey[u"h"_s].identical);
    QCOMPARE(byKey[u"h"_s].maxAbsDiff, 0.0);
    QCOMPARE(byKey[u"n"_s].maxAbsDiff, 1.0);
    QCOMPARE(byKey[u"n"_s].nanMismatches, 0);
    QCOMPARE(byKey[u"m"_s].nanMismatches, 1);
    QVERIFY(byKey[u"view"_s].identical); // compared as values, not storages
    QCOMPARE(d->identicalCount, 2);
    QCOMPARE(d->maxAbsDiff, 1.0);
    QVERIFY(!d->identical());
    QCOMPARE(d->summary,
             u"2 of 7 tensors bit-identical, 5 differ (largest |A − B|: 1 in steps), 1 tensor "
             "with another dtype, 1 tensor of another shape (shape), 1 key with other non-tensor "
             "values (cfg), 2 keys only in A (only_a.*) and 1 key only in B (only_b)."_s);

    const Result<StateDictDiff> same = diffStateDicts(a, a);
    QVERIFY(same);
    QVERIFY(same->identical()); // NaNs too: bit-identical
    const Value clean = Value::orderedDict({{"w", floats({1, 2})}, {"i", 3}});
    const Result<StateDictDiff> identical = diffStateDicts(clean, clean);
    QVERIFY(identical->identical());
    QCOMPARE(identical->summary,
             u"The state dicts are identical: 2 keys, every tensor bit for bit."_s);

    const Result<StateDictDiff> bad = diffStateDicts(a, Value::list());
    QVERIFY(!bad);
    QVERIFY2(bad.errorMessage().contains(u"both must be state dicts"_s),
             qPrintable(bad.errorMessage()));
    Tensor broken = floats({1, 2});
    broken.shape = {5};
    const Result<StateDictDiff> layout
        = diffStateDicts(Value::orderedDict({{"x", broken}}), Value::orderedDict({{"x", broken}}));
    QVERIFY(!layout);
    QVERIFY2(layout.errorMessage().startsWith(u"Cannot compare “x”: "_s),
             qPrintable(layout.errorMessage()));
}

void TestCheckpointRepair::descriptions()
{
    QCOMPARE(describe(StripPrefix{u"module."_s}), u"Strip the prefix “module.”"_s);
    QCOMPARE(describe(AddPrefix{u"module."_s}), u"Add the prefix “module.”"_s);
    QCOMPARE(describe(RenameRegex{uR"(^(.*)\.gamma$)"_s, uR"(\1.weight)"_s}),
             uR"(Rename the keys matching /^(.*)\.gamma$/ to “\1.weight”)"_s);
    QCOMPARE(describe(RenameKeys{{{u"a"_s, u"b"_s}, {u"c"_s, u"d"_s}, {u"e"_s, u"f"_s}}}),
             u"Rename 3 keys: a → b, c → d and 1 more"_s);
    QCOMPARE(describe(ExtractDict{{u"state_dict"_s}}), u"Use the dict at root[\"state_dict\"]"_s);
    QCOMPARE(describe(DropKeys{{u"fc.*"_s, u"classifier.*"_s}}),
             u"Drop the keys matching fc.* and classifier.*"_s);
    QCOMPARE(describe(CastFloat{DType::Float16, {}}), u"Cast floating point tensors to float16"_s);
    QCOMPARE(describe(CastFloat{DType::BFloat16, {DType::Float32}}),
             u"Cast float32 tensors to bfloat16"_s);
    QCOMPARE(describe(MapDevices{u"cpu"_s, {}}), u"Put every storage on cpu"_s);
    QCOMPARE(describe(MapDevices{{}, {{u"cuda:1"_s, u"cuda:0"_s}}}),
             u"Map the devices cuda:1 → cuda:0"_s);
    QCOMPARE(keyPathText({u"model"_s, u"ema"_s}), u"root[\"model\"][\"ema\"]"_s);
    QCOMPARE(keyPathText({}), u"root"_s);
}

QTEST_GUILESS_MAIN(TestCheckpointRepair)
#include "tst_checkpointrepair.moc"
