#include "training/trainingjobs.h"

#include "dataset/imagefolder.h"

#include <QCollator>
#include <QDateTime>
#include <QDirIterator>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QLocale>
#include <QMutex>
#include <QMutexLocker>
#include <QThread>
#include <QtConcurrent>

#include <algorithm>
#include <atomic>
#include <exception>

namespace ifs {

namespace {
constexpr int kFlushMs = 100;
} // namespace

// ------------------------------------------------------------------------------------------------
// Training

struct TrainingJob::Shared
{
    std::unique_ptr<Trainer> trainer;
    QMutex mutex;
    QList<StepProgress> steps; // not yet delivered
    std::optional<TrainFinish> finish;
};

TrainingJob::TrainingJob(QObject *parent)
    : QObject(parent)
{
    m_flushTimer.setInterval(kFlushMs);
    connect(&m_flushTimer, &QTimer::timeout, this, &TrainingJob::flushSteps);
}

TrainingJob::~TrainingJob()
{
    if (m_thread) {
        // The callbacks post to this object until the thread ends: wait for it here, before the
        // object goes (its pending events are then dropped with it).
        m_shared->trainer->stop(false);
        m_thread->wait();
        delete m_thread;
        m_thread = nullptr;
    }
}

bool TrainingJob::isRunning() const
{
    return m_thread != nullptr;
}

bool TrainingJob::start(const TrainConfig &config)
{
    if (isRunning())
        return false;
    m_config = config;
    m_stopping = false;
    auto shared = std::make_shared<Shared>();
    shared->trainer = std::make_unique<Trainer>(config);
    m_shared = shared;

    // Runs on the worker thread: queue everything to this object's thread, quickly.
    TrainCallbacks callbacks;
    callbacks.started = [this](const TrainStart &start) {
        QMetaObject::invokeMethod(
            this, [this, start] { Q_EMIT started(start); }, Qt::QueuedConnection);
    };
    callbacks.status = [this](const QString &text) {
        QMetaObject::invokeMethod(
            this, [this, text] { Q_EMIT statusChanged(text); }, Qt::QueuedConnection);
    };
    callbacks.step = [shared](const StepProgress &progress) {
        QMutexLocker lock(&shared->mutex);
        shared->steps.append(progress);
    };
    callbacks.epoch = [this](const EpochReport &report) {
        QMetaObject::invokeMethod(
            this,
            [this, report] {
                flushSteps(); // the epoch's last steps come before it
                Q_EMIT epochFinished(report);
            },
            Qt::QueuedConnection);
    };
    callbacks.finished = [shared](const TrainFinish &finish) {
        QMutexLocker lock(&shared->mutex);
        shared->finish = finish;
    };

    m_thread = QThread::create([shared, callbacks] {
        // Trainer::run is the exception boundary; this is the last line of defence.
        try {
            shared->trainer->run(callbacks);
        } catch (const std::exception &error) {
            QMutexLocker lock(&shared->mutex);
            if (!shared->finish) {
                TrainFinish finish;
                finish.outcome = TrainOutcome::Failed;
                finish.message
                    = QObject::tr("Training failed: %1").arg(QString::fromLocal8Bit(error.what()));
                shared->finish = finish;
            }
        } catch (...) {
            QMutexLocker lock(&shared->mutex);
            if (!shared->finish) {
                TrainFinish finish;
                finish.outcome = TrainOutcome::Failed;
                finish.message = QObject::tr("Training failed with an unknown error");
                shared->finish = finish;
            }
        }
    });
    m_thread->setObjectName(QStringLiteral("ifs-training"));
    // QThread::finished comes from the ending thread; the handler runs here, after every event
    // the callbacks posted before it.
    connect(m_thread, &QThread::finished, this, [this, shared] {
        if (m_shared != shared)
            return;
        flushSteps();
        m_flushTimer.stop();
        QThread *thread = m_thread;
        m_thread = nullptr;
        thread->wait();
        thread->deleteLater();
        std::optional<TrainFinish> finish;
        {
            QMutexLocker lock(&shared->mutex);
            finish = shared->finish;
        }
        if (!finish) {
            finish = TrainFinish{};
            finish->outcome = TrainOutcome::Failed;
            finish->message = tr("Training ended without saying how");
        }
        m_stopping = false;
        Q_EMIT finished(*finish);
    });
    m_flushTimer.start();
    m_thread->start();
    return true;
}

void TrainingJob::flushSteps()
{
    if (!m_shared)
        return;
    QList<StepProgress> steps;
    {
        QMutexLocker lock(&m_shared->mutex);
        steps.swap(m_shared->steps);
    }
    if (!steps.isEmpty())
        Q_EMIT stepsReady(steps);
}

void TrainingJob::pause()
{
    if (isRunning())
        m_shared->trainer->pause();
}

void TrainingJob::resume()
{
    if (isRunning())
        m_shared->trainer->resume();
}

bool TrainingJob::isPaused() const
{
    return isRunning() && m_shared->trainer->isPaused();
}

void TrainingJob::stop(bool saveCheckpoint)
{
    if (!isRunning())
        return;
    m_stopping = true;
    m_shared->trainer->stop(saveCheckpoint);
}

bool TrainingJob::wait(int milliseconds)
{
    if (!m_thread)
        return true;
    return milliseconds < 0 ? m_thread->wait() : m_thread->wait(QDeadlineTimer(milliseconds));
}

// ------------------------------------------------------------------------------------------------
// Evaluation

namespace {

struct EvaluationOutcome
{
    std::shared_ptr<const Evaluation> evaluation;
    QStringList notes;
    QString error;
    bool cancelled = false;
};

QString exceptionMessage(const std::exception &error)
{
    return QString::fromLocal8Bit(error.what()).section(u'\n', 0, 0);
}

} // namespace

struct EvaluationJob::Run
{
    std::atomic_bool cancel{false};
    std::atomic<qint64> done{0};
    std::atomic<qint64> total{0};
    std::atomic_bool loading{true};
    QFutureWatcher<EvaluationOutcome> *watcher = nullptr;
    QTimer *timer = nullptr;
};

EvaluationJob::EvaluationJob(QObject *parent)
    : QObject(parent)
{ }

EvaluationJob::~EvaluationJob()
{
    if (m_run) {
        m_run->cancel = true;
        // The pool thread holds only the shared Run; nothing of ours is touched after this.
        m_run->watcher->disconnect(this);
    }
}

bool EvaluationJob::isRunning() const
{
    return m_run != nullptr;
}

void EvaluationJob::requestCancel()
{
    if (m_run)
        m_run->cancel = true;
}

void EvaluationJob::start(const QString &checkpoint, const SampleSource &samples,
                          const ClassifierOptions &options, int batchSize)
{
    if (m_run) {
        m_run->cancel = true;
        m_run->watcher->disconnect(this);
        m_run->timer->stop();
        m_run->timer->deleteLater();
        // The watcher goes when its future ends (it is parented here until then).
        QFutureWatcher<EvaluationOutcome> *old = m_run->watcher;
        connect(old, &QFutureWatcher<EvaluationOutcome>::finished, old, &QObject::deleteLater);
        if (old->isFinished())
            old->deleteLater();
    }
    auto run = std::make_shared<Run>();
    m_run = run;
    run->watcher = new QFutureWatcher<EvaluationOutcome>(this);
    run->timer = new QTimer(this);
    run->timer->setInterval(100);
    connect(run->timer, &QTimer::timeout, this, [this, run] {
        const qint64 done = run->done.load();
        const qint64 total = run->total.load();
        const QLocale locale;
        Q_EMIT progressChanged(done, total,
                               run->loading
                                   ? tr("Loading the images and the checkpoint…")
                                   : tr("Evaluating: %1 of %2 images")
                                         .arg(locale.toString(done), locale.toString(total)));
    });
    connect(run->watcher, &QFutureWatcher<EvaluationOutcome>::finished, this, [this, run] {
        run->timer->stop();
        run->timer->deleteLater();
        run->watcher->deleteLater();
        if (m_run == run)
            m_run.reset();
        const EvaluationOutcome outcome = run->watcher->result();
        if (outcome.cancelled)
            Q_EMIT cancelled();
        else if (!outcome.error.isEmpty())
            Q_EMIT failed(outcome.error);
        else
            Q_EMIT finished(outcome.evaluation, outcome.notes);
    });
    run->watcher->setFuture(QtConcurrent::run([run, checkpoint, samples, options, batchSize] {
        EvaluationOutcome outcome;
        try {
            Result<std::vector<LoaderSample>> list = samples
                ? samples()
                : Result<std::vector<LoaderSample>>(std::vector<LoaderSample>{});
            if (!list) {
                outcome.error = list.errorMessage();
                return outcome;
            }
            if (list->empty()) {
                outcome.error = QObject::tr("No labelled images to evaluate on");
                return outcome;
            }
            run->total = qint64(list->size());
            Result<Classifier> classifier = Classifier::load(checkpoint, options);
            if (!classifier) {
                outcome.error = classifier.errorMessage();
                return outcome;
            }
            outcome.notes = classifier->notes();
            run->loading = false;
            if (run->cancel) {
                outcome.cancelled = true;
                return outcome;
            }
            Result<Evaluation> evaluation = classifier->evaluate(
                list.value(), batchSize, 0,
                [run](qint64 done, qint64 total) {
                    run->done = done;
                    run->total = total;
                },
                &run->cancel);
            if (run->cancel) {
                outcome.cancelled = true;
                return outcome;
            }
            if (!evaluation) {
                outcome.error = evaluation.errorMessage();
                return outcome;
            }
            outcome.evaluation = std::make_shared<const Evaluation>(std::move(evaluation).value());
        } catch (const std::exception &error) {
            outcome.error = QObject::tr("Evaluation failed: %1").arg(exceptionMessage(error));
        }
        return outcome;
    }));
    run->timer->start();
}

// ------------------------------------------------------------------------------------------------
// Prediction

QStringList collectImages(const QStringList &paths, int limit, bool *truncated)
{
    QStringList images;
    bool cut = false;
    for (const QString &path : paths) {
        const QFileInfo info(path);
        if (!info.isDir()) {
            images.append(info.absoluteFilePath());
            continue;
        }
        QStringList found;
        QDirIterator it(info.absoluteFilePath(), QDir::Files | QDir::Hidden,
                        QDirIterator::Subdirectories | QDirIterator::FollowSymlinks);
        while (it.hasNext()) {
            const QString file = it.next();
            if (hasImageExtension(QFile::encodeName(it.fileName()).toStdString()))
                found.append(file);
        }
        QCollator collator;
        collator.setNumericMode(true);
        std::sort(found.begin(), found.end(), collator);
        images.append(found);
    }
    if (limit > 0 && images.size() > limit) {
        images.resize(limit);
        cut = true;
    }
    if (truncated)
        *truncated = cut;
    return images;
}

struct PredictJob::Cache
{
    QMutex mutex; // held for a whole prediction: a Classifier is used by one thread at a time
    QString path;
    QString device;
    QDateTime modified; // last.pth is rewritten every epoch: reload it then
    std::unique_ptr<Classifier> classifier;
};

namespace {

struct PredictOutcome
{
    QList<ImagePrediction> predictions;
    QStringList classes;
    QStringList notes;
    QString error;
};

} // namespace

struct PredictJob::Run
{
    QFutureWatcher<PredictOutcome> *watcher = nullptr;
};

PredictJob::PredictJob(QObject *parent)
    : QObject(parent)
    , m_cache(std::make_shared<Cache>())
{ }

PredictJob::~PredictJob()
{
    if (m_run)
        m_run->watcher->disconnect(this);
}

bool PredictJob::isRunning() const
{
    return m_run != nullptr;
}

void PredictJob::start(const QString &checkpoint, const QStringList &paths, int topk,
                       const ClassifierOptions &options, int limit)
{
    if (m_run) {
        QFutureWatcher<PredictOutcome> *old = m_run->watcher;
        old->disconnect(this);
        connect(old, &QFutureWatcher<PredictOutcome>::finished, old, &QObject::deleteLater);
        if (old->isFinished())
            old->deleteLater();
    }
    auto run = std::make_shared<Run>();
    m_run = run;
    run->watcher = new QFutureWatcher<PredictOutcome>(this);
    connect(run->watcher, &QFutureWatcher<PredictOutcome>::finished, this, [this, run] {
        run->watcher->deleteLater();
        if (m_run == run)
            m_run.reset();
        const PredictOutcome outcome = run->watcher->result();
        if (!outcome.error.isEmpty())
            Q_EMIT failed(outcome.error);
        else
            Q_EMIT finished(outcome.predictions, outcome.classes, outcome.notes);
    });
    std::shared_ptr<Cache> cache = m_cache;
    run->watcher->setFuture(QtConcurrent::run([cache, checkpoint, paths, topk, options, limit] {
        PredictOutcome outcome;
        try {
            bool truncated = false;
            const QStringList images = collectImages(paths, limit, &truncated);
            if (images.isEmpty()) {
                outcome.error = QObject::tr("No image files found in %1")
                                    .arg(paths.join(QStringLiteral(", ")));
                return outcome;
            }
            if (truncated)
                outcome.notes.append(
                    QObject::tr("Only the first %1 images are predicted").arg(limit));
            QMutexLocker lock(&cache->mutex);
            const QDateTime modified = QFileInfo(checkpoint).lastModified();
            if (!cache->classifier || cache->path != checkpoint || cache->device != options.device
                || cache->modified != modified) {
                cache->classifier.reset();
                Result<Classifier> loaded = Classifier::load(checkpoint, options);
                if (!loaded) {
                    outcome.error = loaded.errorMessage();
                    return outcome;
                }
                cache->classifier = std::make_unique<Classifier>(std::move(loaded).value());
                cache->path = checkpoint;
                cache->device = options.device;
                cache->modified = modified;
            }
            outcome.classes = cache->classifier->classes();
            outcome.notes = cache->classifier->notes() + outcome.notes;
            Result<QList<ImagePrediction>> predictions = cache->classifier->predict(images, topk);
            if (!predictions) {
                outcome.error = predictions.errorMessage();
                return outcome;
            }
            outcome.predictions = predictions.value();
        } catch (const std::exception &error) {
            outcome.error = QObject::tr("Prediction failed: %1").arg(exceptionMessage(error));
        }
        return outcome;
    }));
}

} // namespace ifs
