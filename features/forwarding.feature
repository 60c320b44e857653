@needs-pbx-sim
@cap-forwarding
Feature: Forwarding and do-not-disturb
  Scenario: Forwarding set, read back, reported and applied
    Given alice is signed in
    And carol is signed in
    When alice forwards all calls to carol
    Then alice sees forwarding to carol
    And alice reads back forwarding to carol
    When the outside caller +14255550200 calls alice
    Then alice sees the call as forwarded because of callForwardImmediate
    And carol sees a call from +14255550200
    And carol's desk phone rings

  Scenario: Forwarding when nobody answers
    Given a ring lasts 200 ms
    And alice is signed in
    And carol is signed in
    When alice forwards unanswered calls to carol after 2 rings
    Then alice sees forwarding to carol
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    And alice sees the call as forwarded because of callForwardNoAnswer
    And carol sees a call from +14255550200

  Scenario: Forwarding when busy
    Given alice is signed in
    And carol is signed in
    When alice forwards calls to carol when busy
    Then alice sees forwarding to carol
    When alice dials bob
    And bob answers at the desk phone
    Then alice sees the call as established
    When the outside caller +14255550200 calls alice
    Then carol sees a call from +14255550200
    And carol's desk phone rings
    And alice's desk phone is talking

  Scenario: Forwarding set at the desk phone shows in Lync
    Given alice is signed in
    When alice forwards all calls to carol at the desk phone
    Then alice sees forwarding to carol

  Scenario: Do-not-disturb
    Given alice is signed in
    And bob is signed in
    When alice turns do-not-disturb on
    Then alice sees do-not-disturb on
    When bob dials alice
    Then bob sees the call as failed because of doNotDisturb
