// The one element decoder (checkpoint/dtypecodec.h) against Python torch 1.13
// (tests/tools/dtypecodec_oracle.py): every float16 and bfloat16 bit pattern to float32 bit for
// bit, NaN payloads and signs, infinities and subnormals included; the tensor statistics the CLI
// and the GUI show, which decode through it; and numpy float16 scalars as the reader reads them.
#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointsummary.h"
#include "checkpoint/dtypecodec.h"

#include "testutil.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>
#include <QtEndian>

#include <bit>
#include <cmath>

using namespace ifs;
using namespace ifs::ckpt;

Q_DECLARE_METATYPE(ifs::ckpt::DType)

class TestDTypeCodec : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void decodesLikeTorch_data();
    void decodesLikeTorch();
    void statisticsCountLikeTorch_data();
    void statisticsCountLikeTorch();
    void numpyHalfScalarsReadAsPython();

private:
    /// torch's float32 bits for every pattern of `dtype`, in pattern order.
    QList<quint32> torchBits(DType dtype) const;
    /// Every bit pattern of a 16-bit dtype as a 1-D tensor.
    static Tensor allPatterns(DType dtype);

    QTemporaryDir m_dir;
    QJsonObject m_summary;
};

void TestDTypeCodec::initTestCase()
{
    QVERIFY(m_dir.isValid());
    const test::ProcessResult r = test::runOracle(QStringLiteral("dtypecodec_oracle.py"),
                                                  {QStringLiteral("decode"), m_dir.path()});
    QVERIFY2(r.exitCode == 0, r.err.constData());
    m_summary = QJsonDocument::fromJson(r.out).object();
    QVERIFY(!m_summary.isEmpty());
}

QList<quint32> TestDTypeCodec::torchBits(DType dtype) const
{
    QFile file(m_dir.filePath(dtypeName(dtype) + QStringLiteral(".bin")));
    if (!file.open(QIODevice::ReadOnly))
        return {};
    const QByteArray bytes = file.readAll();
    QList<quint32> bits;
    for (qsizetype i = 0; i + 4 <= bytes.size(); i += 4)
        bits.append(qFromLittleEndian<quint32>(bytes.constData() + i));
    return bits;
}

Tensor TestDTypeCodec::allPatterns(DType dtype)
{
    QByteArray bytes(2 * 65536, Qt::Uninitialized);
    for (int i = 0; i < 65536; ++i)
        qToLittleEndian<quint16>(quint16(i), bytes.data() + 2 * i);
    return Tensor::fromBytes(dtype, bytes, {65536});
}

void TestDTypeCodec::decodesLikeTorch_data()
{
    QTest::addColumn<DType>("dtype");
    QTest::newRow("float16") << DType::Float16;
    QTest::newRow("bfloat16") << DType::BFloat16;
}

void TestDTypeCodec::decodesLikeTorch()
{
    QFETCH(DType, dtype);
    const QList<quint32> expected = torchBits(dtype);
    QCOMPARE(expected.size(), 65536);
    int mismatches = 0;
    QString first;
    for (int i = 0; i < 65536; ++i) {
        const quint16 pattern = quint16(i);
        const quint32 bits
            = dtype == DType::Float16 ? floatBitsFromHalf(pattern) : floatBitsFromBFloat16(pattern);
        const float value
            = dtype == DType::Float16 ? halfToFloat(pattern) : bfloat16ToFloat(pattern);
        char raw[2];
        qToLittleEndian<quint16>(pattern, raw);
        const double wide = elementToDouble(dtype, raw);
        const float want = std::bit_cast<float>(expected[i]);
        // float → double keeps NaN-ness and sign; other values exactly.
        const bool wideOk = std::isnan(want)
            ? std::isnan(wide) && std::signbit(wide) == std::signbit(want)
            : wide == double(want) && std::signbit(wide) == std::signbit(want);
        if (bits != expected[i] || std::bit_cast<quint32>(value) != expected[i] || !wideOk) {
            if (mismatches++ == 0) {
                first = QStringLiteral("0x%1 → 0x%2, torch 0x%3")
                            .arg(i, 4, 16, QLatin1Char('0'))
                            .arg(bits, 8, 16, QLatin1Char('0'))
                            .arg(expected[i], 8, 16, QLatin1Char('0'));
            }
        }
    }
    QVERIFY2(mismatches == 0,
             qPrintable(QStringLiteral("%1 patterns differ, first %2").arg(mismatches).arg(first)));
    // The cases that once differed between copies of the decoder: a signalling NaN becomes quiet
    // with its payload, subnormals are exact.
    if (dtype == DType::Float16) {
        QCOMPARE(floatBitsFromHalf(0x7C01), quint32(0x7FC02000));
        QCOMPARE(floatBitsFromHalf(0xFE01), quint32(0xFFC02000));
        QCOMPARE(halfToFloat(0x0001), std::ldexp(1.0f, -24));
        QCOMPARE(halfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
    } else {
        QCOMPARE(floatBitsFromBFloat16(0x7F81), quint32(0x7F810000)); // stays signalling
    }
}

void TestDTypeCodec::statisticsCountLikeTorch_data()
{
    decodesLikeTorch_data();
}

void TestDTypeCodec::statisticsCountLikeTorch()
{
    QFETCH(DType, dtype);
    const QJsonObject want = m_summary[dtypeName(dtype)].toObject();
    const TensorStats stats = computeTensorStats(allPatterns(dtype));
    QVERIFY2(stats.error.isEmpty(), qPrintable(stats.error));
    QCOMPARE(stats.count, qint64(65536));
    QCOMPARE(stats.nans, want[QStringLiteral("nan")].toInteger());
    QCOMPARE(stats.infs, want[QStringLiteral("inf")].toInteger());
    QCOMPARE(stats.zeros, want[QStringLiteral("zeros")].toInteger());
    QCOMPARE(stats.min, want[QStringLiteral("min")].toDouble());
    QCOMPARE(stats.max, want[QStringLiteral("max")].toDouble());
}

void TestDTypeCodec::numpyHalfScalarsReadAsPython()
{
    const QString path = m_dir.filePath(QStringLiteral("scalars.pt"));
    const test::ProcessResult r = test::runOracle(QStringLiteral("dtypecodec_oracle.py"),
                                                  {QStringLiteral("scalars"), path});
    QVERIFY2(r.exitCode == 0, r.err.constData());
    const QJsonArray expected = QJsonDocument::fromJson(r.out).array();
    const Result<CheckpointFile> file = readCheckpoint(path);
    QVERIFY2(file, qPrintable(file.errorMessage()));
    const Value scalars = file->root.value(u"h");
    QCOMPARE(scalars.size(), expected.size());
    for (qsizetype i = 0; i < expected.size(); ++i) {
        const QJsonArray row = expected[i].toArray();
        const Value value = scalars.at(i);
        QVERIFY2(value.isFloat(), qPrintable(value.typeName()));
        const double got = value.toDouble();
        const QString text = row[1].toString();
        const QString where = QStringLiteral("float16 0x%1").arg(row[0].toInt(), 4, 16);
        if (text == u"nan") {
            QVERIFY2(std::isnan(got), qPrintable(where));
            continue;
        }
        bool ok = false;
        const double want = text == u"inf" ? std::numeric_limits<double>::infinity()
            : text == u"-inf"              ? -std::numeric_limits<double>::infinity()
                                           : text.toDouble(&ok);
        QVERIFY2(ok || std::isinf(want), qPrintable(where));
        QVERIFY2(got == want && std::signbit(got) == std::signbit(want), qPrintable(where));
    }
}

QTEST_GUILESS_MAIN(TestDTypeCodec)
#include "tst_dtypecodec.moc"
