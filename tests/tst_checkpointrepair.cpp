#include "checkpointrepair.h"

#include <QTest>

class TestCheckpointRepair : public QObject
{
    Q_OBJECT
};

QTEST_GUILESS_MAIN(TestCheckpointRepair)
#include "tst_checkpointrepair.moc"
