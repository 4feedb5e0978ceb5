// ifstudio-cli inspect / repair / diff on files made by real PyTorch (/usr/bin/python3).
#include "checkpoint/checkpointfiles.h"
#include "testutil.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

using namespace ifs;

class TstCheckpointCli : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;

    QString file(const QString &name) const { return m_dir.filePath(name); }

    test::ProcessResult python(const QString &code, const QStringList &args = {})
    {
        return test::runProcess(test::oraclePython(),
                                QStringList{QStringLiteral("-c"), code} + args, 180000);
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        // A DataParallel resnet18 inside a training checkpoint, saved "on cuda:0" (the tag set
        // on this CPU-only machine as torch.save would write it on a GPU); the plain model; a
        // pickle whose __reduce__ would run a command.
        const test::ProcessResult r = python(QStringLiteral(R"(
import os, sys, torch, torchvision
d = sys.argv[1]
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10)
torch.save(m.state_dict(), os.path.join(d, 'plain.pth'))
orig = torch.serialization.location_tag
torch.serialization.location_tag = lambda storage: 'cuda:0'
try:
    torch.save({'model_state_dict': torch.nn.DataParallel(m).state_dict(), 'epoch': 7,
                'best_acc': 91.5, 'arch': 'resnet18'}, os.path.join(d, 'dp_gpu.pth'))
finally:
    torch.serialization.location_tag = orig
class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + os.path.join(d, 'PWNED'),))
torch.save({'weights': torch.ones(3), 'payload': Evil()}, os.path.join(d, 'evil.pt'))
)"),
                                             {m_dir.path()});
        QVERIFY2(r.exitCode == 0, r.err.constData());
    }

    void inspectJsonDescribesWhatTorchLoads()
    {
        const test::ProcessResult r
            = test::runCli({QStringLiteral("inspect"), file(QStringLiteral("dp_gpu.pth")),
                            QStringLiteral("--json")});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject json = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(json[QStringLiteral("format")].toString(), QStringLiteral("zip"));
        const QJsonArray tensors = json[QStringLiteral("tensors")].toArray();
        // The same keys, dtypes, shapes and sizes as torch.load(map_location='cpu') sees.
        const test::ProcessResult ref = python(QStringLiteral(R"(
import sys, json, torch
ck = torch.load(sys.argv[1], map_location='cpu')
print(json.dumps([[['model_state_dict', k], str(v.dtype).replace('torch.', ''), list(v.shape),
                   v.numel() * v.element_size()] for k, v in ck['model_state_dict'].items()]))
)"),
                                               {file(QStringLiteral("dp_gpu.pth"))});
        QVERIFY2(ref.exitCode == 0, ref.err.constData());
        const QJsonArray expected = QJsonDocument::fromJson(ref.out).array();
        QCOMPARE(tensors.size(), expected.size());
        for (qsizetype i = 0; i < tensors.size(); ++i) {
            const QJsonObject t = tensors[i].toObject();
            const QJsonArray e = expected[i].toArray();
            QCOMPARE(t[QStringLiteral("path")].toArray(), e[0].toArray());
            QCOMPARE(t[QStringLiteral("dtype")].toString(), e[1].toString());
            QCOMPARE(t[QStringLiteral("shape")].toArray(), e[2].toArray());
            QCOMPARE(t[QStringLiteral("bytes")].toInteger(), e[3].toInteger());
            QCOMPARE(t[QStringLiteral("device")].toString(), QStringLiteral("cuda:0"));
        }
        // The non-tensor values, with their types.
        bool sawEpoch = false, sawAcc = false;
        for (const QJsonValue &v : json[QStringLiteral("values")].toArray()) {
            const QJsonObject o = v.toObject();
            if (o[QStringLiteral("path")].toArray() == QJsonArray{QStringLiteral("epoch")}) {
                QCOMPARE(o[QStringLiteral("type")].toString(), QStringLiteral("int"));
                QCOMPARE(o[QStringLiteral("value")].toInt(), 7);
                sawEpoch = true;
            }
            if (o[QStringLiteral("path")].toArray() == QJsonArray{QStringLiteral("best_acc")}) {
                QCOMPARE(o[QStringLiteral("value")].toDouble(), 91.5);
                sawAcc = true;
            }
        }
        QVERIFY(sawEpoch && sawAcc);
        // Read on this CPU-only machine with a note, not an error.
        QVERIFY(!json[QStringLiteral("notes")].toArray().isEmpty());
    }

    void inspectStatsMatchTorch()
    {
        const test::ProcessResult r
            = test::runCli({QStringLiteral("inspect"), file(QStringLiteral("plain.pth")),
                            QStringLiteral("--json"), QStringLiteral("--stats")});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject first
            = QJsonDocument::fromJson(r.out)[QStringLiteral("tensors")][0].toObject();
        const test::ProcessResult ref = python(QStringLiteral(R"(
import sys, torch
t = torch.load(sys.argv[1])['conv1.weight'].double()
print(repr(t.min().item()), repr(t.max().item()), repr(t.mean().item()), repr(t.std().item()))
)"),
                                               {file(QStringLiteral("plain.pth"))});
        QVERIFY2(ref.exitCode == 0, ref.err.constData());
        const QList<QByteArray> v = ref.out.trimmed().split(' ');
        const QJsonObject stats = first[QStringLiteral("stats")].toObject();
        QCOMPARE(stats[QStringLiteral("min")].toDouble(), v[0].toDouble());
        QCOMPARE(stats[QStringLiteral("max")].toDouble(), v[1].toDouble());
        QVERIFY(std::abs(stats[QStringLiteral("mean")].toDouble() - v[2].toDouble()) < 1e-12);
        QVERIFY(std::abs(stats[QStringLiteral("std")].toDouble() - v[3].toDouble()) < 1e-9);
    }

    void repairedFileLoadsIntoTorchvisionStrictly()
    {
        const QString out = file(QStringLiteral("fixed.pth"));
        const test::ProcessResult r
            = test::runCli({QStringLiteral("repair"), file(QStringLiteral("dp_gpu.pth")),
                            QStringLiteral("--extract"), QStringLiteral("model_state_dict"),
                            QStringLiteral("--strip-prefix"), QStringLiteral("module."),
                            QStringLiteral("--verify"), QStringLiteral("-o"), out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY2(r.err.contains("verified: The state dicts are identical"), r.err.constData());
        const test::ProcessResult py = python(QStringLiteral(R"(
import sys, torch, torchvision
sd = torch.load(sys.argv[1], weights_only=True)
m = torchvision.models.resnet18(num_classes=10)
m.load_state_dict(sd, strict=True)
ref = torch.load(sys.argv[2])
print(type(sd).__name__, all(torch.equal(sd[k], ref[k]) for k in ref), list(sd) == list(ref))
)"),
                                              {out, file(QStringLiteral("plain.pth"))});
        QVERIFY2(py.exitCode == 0, py.err.constData());
        QCOMPARE(py.out.trimmed(), QByteArray("OrderedDict True True"));

        // --against --auto finds the same repair by itself, keeping epoch and the rest.
        const QString autoOut = file(QStringLiteral("auto.pth"));
        const test::ProcessResult a
            = test::runCli({QStringLiteral("repair"), file(QStringLiteral("dp_gpu.pth")),
                            QStringLiteral("--against"), file(QStringLiteral("plain.pth")),
                            QStringLiteral("--auto"), QStringLiteral("-o"), autoOut});
        QVERIFY2(a.exitCode == 0, a.err.constData());
        QVERIFY2(a.out.contains("Strip the prefix"), a.out.constData());
        const test::ProcessResult d
            = test::runCli({QStringLiteral("diff"), autoOut, file(QStringLiteral("plain.pth"))});
        QCOMPARE(d.exitCode, 0);
        const test::ProcessResult epoch = python(
            QStringLiteral(
                "import sys, torch; print(torch.load(sys.argv[1], map_location='cpu')['epoch'])"),
            {autoOut});
        QCOMPARE(epoch.out.trimmed(), QByteArray("7"));
    }

    void repairToSafetensorsAndDeviceTag()
    {
        const QString st = file(QStringLiteral("plain.safetensors"));
        QCOMPARE(test::runCli({QStringLiteral("repair"), file(QStringLiteral("plain.pth")),
                               QStringLiteral("-o"), st})
                     .exitCode,
                 0);
        // safetensors back to a .pth tagged for a GPU machine: torch refuses it here without
        // map_location, as it would any GPU-saved file, and loads it with one.
        const QString gpu = file(QStringLiteral("for_gpu.pth"));
        QCOMPARE(test::runCli({QStringLiteral("repair"), st, QStringLiteral("--save-device"),
                               QStringLiteral("cuda:0"), QStringLiteral("-o"), gpu})
                     .exitCode,
                 0);
        const test::ProcessResult py = python(QStringLiteral(R"(
import sys, torch
try:
    torch.load(sys.argv[1])
    print('loaded without map_location')
except RuntimeError as e:
    print('refused' if 'CUDA' in str(e) else str(e))
sd = torch.load(sys.argv[1], map_location='cpu')
ref = torch.load(sys.argv[2])
print(all(torch.equal(sd[k], ref[k]) for k in ref))
)"),
                                              {gpu, file(QStringLiteral("plain.pth"))});
        QVERIFY2(py.exitCode == 0, py.err.constData());
        QCOMPARE(py.out.trimmed(), QByteArray("refused\nTrue"));
    }

    void everyCheckpointSuffixWritesItsFormat()
    {
        // The one list of suffixes: the name chooses the format written (any case), the reader
        // goes by the content.
        QStringList names;
        for (const QString &suffix : ckpt::checkpointSuffixes())
            names.append(QStringLiteral("suffix.") + suffix);
        names.append(QStringLiteral("upper.SAFETENSORS"));
        for (const QString &name : std::as_const(names)) {
            const QString out = file(name);
            const test::ProcessResult written
                = test::runCli({QStringLiteral("repair"), file(QStringLiteral("plain.pth")),
                                QStringLiteral("-o"), out});
            QVERIFY2(written.exitCode == 0, written.err.constData());
            const test::ProcessResult r
                = test::runCli({QStringLiteral("inspect"), out, QStringLiteral("--json")});
            QVERIFY2(r.exitCode == 0, r.err.constData());
            QCOMPARE(QJsonDocument::fromJson(r.out)[QStringLiteral("format")].toString(),
                     ckpt::isSafetensorsPath(name) ? QStringLiteral("safetensors")
                                                   : QStringLiteral("zip"));
        }
    }

    void refusesToOverwriteItsInput()
    {
        const QString in = file(QStringLiteral("plain.pth"));
        QFile f(in);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray before = f.readAll();
        f.close();
        const test::ProcessResult r
            = test::runCli({QStringLiteral("repair"), in, QStringLiteral("--cast"),
                            QStringLiteral("float16"), QStringLiteral("-o"), in});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("--overwrite"), r.err.constData());
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), before);
    }

    void diffReportsDifferences()
    {
        const QString half = file(QStringLiteral("half.pth"));
        QCOMPARE(test::runCli({QStringLiteral("repair"), file(QStringLiteral("plain.pth")),
                               QStringLiteral("--cast"), QStringLiteral("bfloat16"),
                               QStringLiteral("--drop"), QStringLiteral("fc.*"),
                               QStringLiteral("-o"), half})
                     .exitCode,
                 0);
        const test::ProcessResult d
            = test::runCli({QStringLiteral("diff"), file(QStringLiteral("plain.pth")), half,
                            QStringLiteral("--json")});
        QCOMPARE(d.exitCode, 1);
        const QJsonObject json = QJsonDocument::fromJson(d.out).object();
        QCOMPARE(json[QStringLiteral("only_in_a")].toArray(),
                 (QJsonArray{QStringLiteral("fc.weight"), QStringLiteral("fc.bias")}));
        QVERIFY(json[QStringLiteral("dtype_differs")].toArray().size() > 50);
        const double maxDiff = json[QStringLiteral("max_abs_diff")].toDouble();
        QVERIFY2(maxDiff > 0 && maxDiff < 0.01, qPrintable(QString::number(maxDiff)));
    }

    void inertPicklesAreNotExecuted()
    {
        const test::ProcessResult r = test::runCli(
            {QStringLiteral("inspect"), file(QStringLiteral("evil.pt")), QStringLiteral("--json")});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(!QFile::exists(file(QStringLiteral("PWNED"))));
        const QJsonObject json = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(json[QStringLiteral("tensors")].toArray().size(), 1);
        QVERIFY2(
            QJsonDocument(json[QStringLiteral("warnings")].toArray()).toJson().contains("system"),
            r.out.constData());
    }

    void badInputGetsAMessage()
    {
        QVERIFY(
            test::writeFile(file(QStringLiteral("notes.pth")), "<html>not a checkpoint</html>\n"));
        const test::ProcessResult r
            = test::runCli({QStringLiteral("inspect"), file(QStringLiteral("notes.pth"))});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("notes.pth"), r.err.constData());
        QFile f(file(QStringLiteral("plain.pth")));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY(test::writeFile(file(QStringLiteral("cut.pth")), f.read(f.size() / 2)));
        const test::ProcessResult cut
            = test::runCli({QStringLiteral("inspect"), file(QStringLiteral("cut.pth"))});
        QCOMPARE(cut.exitCode, 1);
        QVERIFY2(cut.err.contains("ends early") || cut.err.contains("truncated"),
                 cut.err.constData());
    }
};

QTEST_GUILESS_MAIN(TstCheckpointCli)
#include "tst_checkpointcli.moc"
