// ifstudio-cli inspect / repair / diff on files made by real PyTorch (/usr/bin/python3).
#include "checkpoint/checkpointfiles.h"
#include "testutil.h"

#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <sys/resource.h>
#include <sys/stat.h>

using namespace ifs;

namespace {

/// Runs ifstudio-cli with its address space limited to `bytes` (RLIMIT_AS, set in the child
/// before it starts): any allocation past it fails, so a run that ends well stayed within it.
test::ProcessResult runCliWithin(qint64 bytes, const QStringList &args)
{
    QProcess process;
    process.setChildProcessModifier([bytes] {
        const rlimit limit{rlim_t(bytes), rlim_t(bytes)};
        ::setrlimit(RLIMIT_AS, &limit);
    });
    process.start(test::cliPath(), args);
    test::ProcessResult result;
    if (!process.waitForStarted(30000) || !process.waitForFinished(300000)) {
        process.kill();
        process.waitForFinished();
        result.crashed = true;
        return result;
    }
    result.out = process.readAllStandardOutput();
    result.err = process.readAllStandardError();
    result.crashed = process.exitStatus() == QProcess::CrashExit;
    result.exitCode = process.exitCode();
    return result;
}

} // namespace

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

    void refusesWhatIsNotAFile()
    {
        // A FIFO without a writer: open() for reading would wait forever. The 60 s timeout is a
        // guard only: the refusal comes before anything opens the path.
        const QString fifo = file(QStringLiteral("pipe.pth"));
        QVERIFY(::mkfifo(QFile::encodeName(fifo).constData(), 0600) == 0);
        const QList<QStringList> commands{
            {QStringLiteral("inspect"), fifo},
            {QStringLiteral("inspect"), QStringLiteral("--json"), QStringLiteral("--stats"), fifo},
            {QStringLiteral("repair"), fifo, QStringLiteral("-o"), file(QStringLiteral("x.pth"))},
            {QStringLiteral("diff"), file(QStringLiteral("plain.pth")), fifo},
        };
        for (const QStringList &args : commands) {
            const test::ProcessResult r = test::runCli(args, 60000);
            QVERIFY2(!r.crashed, qPrintable(args.join(u' ')));
            QCOMPARE(r.exitCode, 1);
            QVERIFY2(r.err.contains((QStringLiteral("“") + fifo
                                     + QStringLiteral("”: it is a FIFO (named pipe), not a file"))
                                        .toUtf8()),
                     r.err.constData());
        }
        QVERIFY(!QFile::exists(file(QStringLiteral("x.pth"))));
        const test::ProcessResult folder = test::runCli({QStringLiteral("inspect"), m_dir.path()});
        QCOMPARE(folder.exitCode, 1);
        QVERIFY2(folder.err.contains("it is a folder, not a file"), folder.err.constData());
    }

    void zipBombUnderAMemoryCeiling()
    {
        // Six members of 128 MiB of zeros (768 MiB inflated, under 1 MB on disk), read with the
        // address space limited to 320 MiB (the CLI runs in under 128): inflating it could not
        // fit.
        const QString bomb = file(QStringLiteral("bomb.pth"));
        const test::ProcessResult made
            = test::runProcess(test::oraclePython(),
                               {test::toolPath(QStringLiteral("make_zip_bomb.py")), bomb,
                                QStringLiteral("6"), QStringLiteral("128")});
        QVERIFY2(made.exitCode == 0, made.err.constData());
        QVERIFY(QFileInfo(bomb).size() < (qint64(1) << 20));
        constexpr qint64 kCeiling = qint64(320) << 20;

        // The structure needs no tensor data: nothing is inflated.
        const test::ProcessResult json
            = runCliWithin(kCeiling, {QStringLiteral("inspect"), QStringLiteral("--json"), bomb});
        QVERIFY2(!json.crashed && json.exitCode == 0, json.err.constData());
        const QJsonObject report = QJsonDocument::fromJson(json.out).object();
        QCOMPARE(report[QStringLiteral("tensors")].toArray().size(), 6);
        QCOMPARE(report[QStringLiteral("tensor_bytes")].toInteger(), qint64(768) << 20);

        // Statistics stream each member through a few MiB.
        const test::ProcessResult stats = runCliWithin(
            kCeiling,
            {QStringLiteral("inspect"), QStringLiteral("--json"), QStringLiteral("--stats"), bomb});
        QVERIFY2(!stats.crashed && stats.exitCode == 0, stats.err.constData());
        const QJsonArray withStats
            = QJsonDocument::fromJson(stats.out)[QStringLiteral("tensors")].toArray();
        QCOMPARE(withStats.size(), 6);
        for (const QJsonValue &tensor : withStats) {
            const QJsonObject s = tensor[QStringLiteral("stats")].toObject();
            QCOMPARE(s[QStringLiteral("zeros")].toInteger(), qint64(32) << 20);
            QCOMPARE(s[QStringLiteral("max")].toDouble(), 0.0);
        }

        // Commands that need the data in memory stop at the budget (by default at most half of
        // the address space allowed), with a message.
        const test::ProcessResult diff
            = runCliWithin(kCeiling, {QStringLiteral("diff"), bomb, bomb});
        QVERIFY2(!diff.crashed, diff.err.constData());
        QCOMPARE(diff.exitCode, 1);
        QVERIFY2(diff.err.contains("its compressed records inflate to more than the"),
                 diff.err.constData());
        QVERIFY2(diff.err.contains("--max-inflated"), diff.err.constData());
        const test::ProcessResult small = test::runCli(
            {QStringLiteral("repair"), bomb, QStringLiteral("--max-inflated"),
             QStringLiteral("300M"), QStringLiteral("-o"), file(QStringLiteral("bomb_out.pth"))});
        QCOMPARE(small.exitCode, 1);
        QVERIFY2(small.err.contains("more than the 300.0 MiB allowed"), small.err.constData());
        const test::ProcessResult bad
            = test::runCli({QStringLiteral("inspect"), QStringLiteral("--max-inflated"),
                            QStringLiteral("lots"), bomb});
        QCOMPARE(bad.exitCode, 2);
        QVERIFY2(bad.err.contains("--max-inflated “lots”"), bad.err.constData());
    }

    void hostilePickleGetsAnAnswer()
    {
        // The 101-byte pickle of issue 13 (a list that contains itself, built with DUP, APPEND
        // and BUILD) crashed inspect with SIGSEGV.
        const QString crash = file(QStringLiteral("issue13.pkl"));
        QVERIFY(test::writeFile(
            crash,
            QByteArray::fromBase64("gAJdXV2AAooKbPycBwVLUEb5j49dXWFdYV1hXWFdgAJdXV1dYYACigps/"
                                   "JwHBUtQRvmPj11dYV1hXTJhXWFdgAJdXV1dYV1hXWFdYV1hXWFiXWJdYV1"
                                   "dYWFhXV1hYl1iYWJiYj4=")));
        for (const QStringList &args :
             {QStringList{QStringLiteral("inspect"), crash},
              QStringList{QStringLiteral("inspect"), QStringLiteral("--json"), crash}}) {
            const test::ProcessResult r = test::runCli(args);
            QVERIFY2(!r.crashed, r.err.constData());
            QCOMPARE(r.exitCode, 1);
            QVERIFY2(r.err.contains(
                         (QStringLiteral("Cannot read checkpoint “") + crash + QStringLiteral("”"))
                             .toUtf8()),
                     r.err.constData());
        }
    }

    void repairRefusesAnExistingOutput()
    {
        const QString out = file(QStringLiteral("existing.pth"));
        QVERIFY(test::writeFile(out, "precious"));
        const test::ProcessResult refused
            = test::runCli({QStringLiteral("repair"), file(QStringLiteral("plain.pth")),
                            QStringLiteral("-o"), out});
        QCOMPARE(refused.exitCode, 2);
        QVERIFY2(refused.err.contains(
                     (QStringLiteral("-o “") + out + QStringLiteral("” already exists")).toUtf8()),
                 refused.err.constData());
        QVERIFY2(refused.err.contains("--overwrite"), refused.err.constData());
        QFile f(out);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), QByteArray("precious"));
        f.close();
        const test::ProcessResult replaced
            = test::runCli({QStringLiteral("repair"), file(QStringLiteral("plain.pth")),
                            QStringLiteral("-o"), out, QStringLiteral("--overwrite")});
        QVERIFY2(replaced.exitCode == 0, replaced.err.constData());
        QVERIFY(!QFile::exists(out + QStringLiteral(".bak"))); // a backup is for the input only
        const test::ProcessResult d
            = test::runCli({QStringLiteral("diff"), out, file(QStringLiteral("plain.pth"))});
        QCOMPARE(d.exitCode, 0);
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
